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

    @classmethod
    def fresh(cls, model, optimizer_name: str, lr: float, seed: int) -> "TrainingState":
        opt = make_optimizer(optimizer_name, model.backend, model.params, lr)
        return cls(0, 0, float(lr), optimizer_name, opt, np.random.default_rng(seed))

    def track_validation(self, val_loss: float) -> None:
        """Early-stopping bookkeeping: the best validation loss, and epochs since it."""
        if val_loss < self.best_val_loss:
            self.best_val_loss, self.epochs_since_best = val_loss, 0
        else:
            self.epochs_since_best += 1

    def to_checkpoint(self) -> tuple[dict[str, np.ndarray], dict]:
        """(extra host tensors, a JSON-able metadata entry) for the checkpoint."""
        backend = self.optimizer.backend
        tensors = {PREFIX + k: backend.to_numpy(v) for k, v in self.optimizer.state().items()}
        entry = {"epoch": self.epoch, "step": self.step, "lr": self.lr, "optimizer": self.optimizer_name,
                 "counters": self.optimizer.counters(), "rng": self.rng.bit_generator.state,
                 "best_val_loss": None if math.isinf(self.best_val_loss) else self.best_val_loss,
                 "epochs_since_best": self.epochs_since_best}
        return tensors, {"training_state": entry}

    @classmethod
    def from_checkpoint(cls, model, tensors: dict, meta: dict, source: str) -> "TrainingState":
        entry = meta.get("training_state")
        if not isinstance(entry, dict):
            raise CheckpointError(f"{source} holds no training state to resume from (saved by an older xpnet?)")
        try:
            opt = make_optimizer(entry["optimizer"], model.backend, model.params, entry["lr"])
            opt.load_state({k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)},
                           entry["counters"])
            rng = np.random.default_rng()
            rng.bit_generator.state = entry["rng"]
            best = entry["best_val_loss"]
            return cls(int(entry["epoch"]), int(entry["step"]), float(entry["lr"]), entry["optimizer"], opt, rng,
                       math.inf if best is None else float(best), int(entry["epochs_since_best"]))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise CheckpointError(f"{source} has an incomplete training state ({exc}); cannot resume") from None
