"""What training needs besides the weights to carry on exactly where it stopped.

A resumed run must end bitwise identical to one never interrupted (on numpy), so the
checkpoint holds the optimizer's arrays and counters, the shuffling generator's state,
the epoch and step counts, the learning rate in use and the early-stopping bookkeeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xpnet.model.checkpoint import CheckpointError
from xpnet.train.optimizers import make_optimizer

PREFIX = "optimizer."
BEST = "best."  # the best epoch's parameters, in `params` order, while early stopping watches


@dataclass
class TrainingState:
    epoch: int  # epochs finished
    step: int  # optimizer steps taken
    lr: float  # the rate in use (after lr="auto" chose one)
    optimizer_name: str
    optimizer: object
    rng: np.random.Generator  # shuffles the next epoch
    best_val_loss: float = math.inf
    epochs_since_best: int = 0
    best_epoch: int = 0  # the epoch that had best_val_loss
    best_params: list | None = None  # host copies of its parameters, restored when training ends
    weight_decay: float = 0.0  # L2's lambda, part of the optimizer's rule

    @classmethod
    def fresh(cls, model, optimizer_name: str, lr: float, seed: int, weight_decay: float = 0.0) -> "TrainingState":
        opt = make_optimizer(optimizer_name, model.backend, model.params, lr, weight_decay)
        return cls(0, 0, float(lr), optimizer_name, opt, np.random.default_rng(seed), weight_decay=weight_decay)

    def track_validation(self, val_loss: float, model) -> None:
        """Early-stopping bookkeeping: the best validation loss, its epoch and weights, and
        epochs since it."""
        if val_loss < self.best_val_loss:
            self.best_val_loss, self.epochs_since_best, self.best_epoch = val_loss, 0, self.epoch
            self.best_params = [model.backend.to_numpy(p) for p in model.params]
        else:
            self.epochs_since_best += 1

    def restore_best(self, model) -> bool:
        """Put the best epoch's weights back, if a later epoch is the model's now."""
        if self.best_params is None or self.best_epoch == self.epoch:
            return False
        model.params = [model.backend.asarray(best) for best in self.best_params]
        return True

    def to_checkpoint(self) -> tuple[dict[str, np.ndarray], dict]:
        """(extra host tensors, a JSON-able metadata entry) for the checkpoint."""
        backend = self.optimizer.backend
        tensors = {PREFIX + k: backend.to_numpy(v) for k, v in self.optimizer.state().items()}
        tensors.update({f"{BEST}{i}": p for i, p in enumerate(self.best_params or [])})
        entry = {"epoch": self.epoch, "step": self.step, "lr": self.lr, "optimizer": self.optimizer_name,
                 "counters": self.optimizer.counters(), "rng": self.rng.bit_generator.state,
                 "best_val_loss": None if math.isinf(self.best_val_loss) else self.best_val_loss,
                 "epochs_since_best": self.epochs_since_best, "best_epoch": self.best_epoch,
                 "weight_decay": self.weight_decay}
        return tensors, {"training_state": entry}

    @classmethod
    def from_checkpoint(cls, model, tensors: dict, meta: dict, source: str) -> "TrainingState":
        entry = meta.get("training_state")
        if not isinstance(entry, dict):
            raise CheckpointError(f"{source} holds no training state to resume from (saved by an older xpnet?)")
        _check_state_tensors(tensors, source)
        try:
            weight_decay = float(entry.get("weight_decay", 0.0))  # none before it was recorded
            opt = make_optimizer(entry["optimizer"], model.backend, model.params, entry["lr"], weight_decay)
            opt.load_state({k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)},
                           entry["counters"])
            rng = np.random.default_rng()
            rng.bit_generator.state = entry["rng"]
            best = entry["best_val_loss"]
            best_params = [tensors[f"{BEST}{i}"] for i in range(len(model.params))] if f"{BEST}0" in tensors else None
            return cls(int(entry["epoch"]), int(entry["step"]), float(entry["lr"]), entry["optimizer"], opt, rng,
                       math.inf if best is None else float(best), int(entry["epochs_since_best"]),
                       int(entry.get("best_epoch", 0)), best_params, weight_decay)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise CheckpointError(f"{source} has an incomplete training state ({exc}); cannot resume") from None


def _check_state_tensors(tensors: dict, source: str) -> None:
    """The optimizer's state and the best weights kept must be finite floating-point numbers,
    as the weights must (model/checkpoint.py): an integer velocity would fail deep inside the
    first update, a NaN one would poison every weight it touched."""
    for key, value in tensors.items():
        if key.startswith((PREFIX, BEST)) and not (np.issubdtype(value.dtype, np.floating)
                                                   and bool(np.all(np.isfinite(value)))):
            what = "not finite" if np.issubdtype(value.dtype, np.floating) else f"{value.dtype}, not floating point"
            raise CheckpointError(f"{source}: its training state {key!r} is {what}, so the file is damaged; "
                                  "resume from another checkpoint or train afresh")
