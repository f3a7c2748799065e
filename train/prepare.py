"""What `learn` settles before the first step: the task, the output layer, the validation
split, the scaling and the learning rate, each said in one log line where it was chosen.

Every path into training (the API's `learn`, `xpnet train`, a resumed run) comes through
here, so a model is always trained, saved and asked the same way.
"""

from __future__ import annotations

import numpy as np

from xpnet.train.data import DataError
from xpnet.train.optimizers import DEFAULT_LR, check_optimizer
from xpnet.train.scaling import check_scale, describe, fit_scaling, scaled_pair
from xpnet.train.targets import check_data

VALIDATION_SEED = 0x5A11D  # mixed with the run's seed: the split is the same on every resume


def settle_task(model, y, log) -> None:
    """Float targets are values: the network answers values from now on, through a linear
    output. An output layer from_sizes chose becomes identity (said); one the caller chose
    that caps its answers is refused, naming `output=`."""
    regression = np.asarray(y).dtype.kind == "f"
    if regression and model.loss_auto:
        model.use_quadratic_loss()
        _say(log, "regression (float targets): loss quadratic, output layer identity (linear), so it can answer "
                  "any value")
    elif regression and model.activations[-1] != "identity":
        if not model.output_auto:
            if model.regression is None:
                raise DataError(f"y holds floats (regression values), but the network's output layer is "
                                f"{model.activations[-1]}, which caps every answer; build it with "
                                "output=\"identity\" (or give integer class labels)")
        else:
            model.with_linear_output()
            _say(log, "regression (float targets): the output layer is identity (linear), so it can answer any "
                      "value")
    model.output_auto = model.loss_auto = False
    model.regression = regression  # what it learns now is what it answers


def prepare_data(model, data, validation, validation_fraction, scale, seed: int, log):
    """((X, y), validation or None) as the model trains on them: the raw data checked, a
    validation split taken off if asked, the scaling fitted (on a fresh model) and applied."""
    X, y = data
    X, y = check_data(model, X, y, "training data")
    if validation_fraction is not None:
        if validation is not None:
            raise DataError("give validation data or validation_fraction, not both")
        (X, y), validation = split_validation(X, y, validation_fraction, seed)
        _say(log, f"validation: {len(validation[1])} of the {len(y) + len(validation[1])} training samples held "
                  f"back ({100 * validation_fraction:g}%{', stratified by class' if y.dtype.kind != 'f' else ''})")
    settle_scaling(model, X, y, scale, log)
    train_pair = scaled_pair(model, X, y)
    return train_pair, (scaled_pair(model, *validation) if validation is not None else None)


def settle_scaling(model, X, y, scale: str | None, log) -> None:
    """Fit the scaling on a model that has none yet; a trained model keeps its own."""
    check_scale(scale)
    if model.scaling is None:
        model.scaling = fit_scaling(scale, X, y, bool(model.regression))
        line = describe(model.scaling, bool(model.regression), asked=scale is not None)
        if line:
            _say(log, line)
    elif scale is not None and scale != model.scaling.inputs:
        raise DataError(f"this model was trained with scaling {model.scaling.inputs!r} and keeps it, so "
                        f"scale={scale!r} cannot apply: leave scale out, or start from a new model")


def split_validation(X, y, fraction, seed: int):
    """((X, y) to train on, (X, y) to validate on): `fraction` of the rows, drawn at random,
    the same share of every class for labels (so a rare class is not left out of either)."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise DataError(f"the validation fraction must be a number between 0 and 1 (e.g. 0.1), got {fraction!r}")
    rng = np.random.default_rng([seed, VALIDATION_SEED])
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if y.dtype.kind != "f" else [np.arange(len(y))]
    picked = [rng.permutation(g)[:int(round(fraction * len(g)))] for g in groups]
    val = np.sort(np.concatenate(picked))
    if len(val) == 0 or len(val) == len(y):
        raise DataError(f"a validation fraction of {fraction:g} of {len(y)} samples leaves "
                        f"{'nothing to validate on' if len(val) == 0 else 'nothing to train on'}; "
                        "give a fraction that keeps some of each")
    keep = np.ones(len(y), bool)
    keep[val] = False
    return (X[keep], y[keep]), (X[val], y[val])


def settle_lr(lr, optimizer: str, log):
    """The rate asked for; none asked: the optimizer's own default (Adam's is 1e-3, far below
    SGD's), said in the log so a run shows which rate it used."""
    check_optimizer(optimizer)
    if lr is not None:
        return lr
    _say(log, f"lr {DEFAULT_LR[optimizer]:g} ({optimizer}'s default; lr= or --lr to change it)")
    return DEFAULT_LR[optimizer]


LARGE = 1e3  # an input or target this far from 0 as trained (standardised data sit within a few units)


def data_scale_note(model, X, y) -> str | None:
    """Why training may have diverged that is the data's fault, not the rate's: values that
    reach LARGE as the network sees them (after its scaling), naming where, and the cure."""
    for what, a in (("inputs", np.asarray(X)), ("targets", np.asarray(y) if np.asarray(y).dtype.kind == "f" else None)):
        if a is None or a.size == 0:
            continue
        flat = np.abs(a.reshape(len(a), -1))
        row, col = np.unravel_index(int(np.argmax(flat)), flat.shape)
        if flat[row, col] > LARGE:
            scaling = model.scaling
            scaler = None if scaling is None else scaling.inputs if what == "inputs" else scaling.targets
            cure = ("scale them (leave --scale out, or give --scale standard)" if scaler == "none"
                    else "one row is far out of line with the rest: check it for a wrong unit or a corrupt value")
            return (f"the training {what} reach {flat[row, col]:.3g} as the network sees them "
                    f"(row {row}, column {col}); {cure}")
    return None


def check_patience(patience, validation) -> None:
    if patience is not None and validation is None:
        raise DataError("patience stops on the validation loss, but there is no validation data: give "
                        "--val-fraction 0.1 (validation_fraction=0.1 in learn) or validation data")


def _say(log, line: str) -> None:
    if log is not None:
        log(line)
