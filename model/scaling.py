"""The scaling a network was trained under, kept with it so raw inputs give right answers.

A network trained on standardised inputs (each feature minus its mean, over its spread)
answers nonsense for raw ones, and one trained on standardised regression targets answers
in standard units. So the shifts and scales fitted on the training data (train/scaling.py)
live on the network, travel in its checkpoint, and `Network.predict` applies them: inputs
on the way in, regression outputs on the way back (value = output * y_scale + y_shift).
`forward` itself takes inputs as training saw them, already scaled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PREFIX = "scaling."  # checkpoint tensor names: scaling.x_shift, scaling.x_scale, ...
PARTS = ("x_shift", "x_scale", "y_shift", "y_scale")


@dataclass(frozen=True)
class Scaling:
    """How inputs (x) and regression targets (y) were scaled: `inputs`/`targets` name the
    scaler (none, standard, minmax, pixels: train/scaling.py); each shift/scale pair is None where
    nothing was done."""

    inputs: str = "none"
    targets: str = "none"
    x_shift: np.ndarray | None = None  # (D,) subtracted from each input feature...
    x_scale: np.ndarray | None = None  # (D,) ...which is then divided by this
    y_shift: np.ndarray | None = None  # (k,) the same for each regression target
    y_scale: np.ndarray | None = None  # (k,)

    def scale_inputs(self, backend, x):
        """Device inputs (in the backend's dtype) as training saw them."""
        if self.x_shift is None:
            return x
        return (x - backend.asarray(self.x_shift)) / backend.asarray(self.x_scale)

    def unscale_outputs(self, backend, out):
        """Device regression outputs back in the targets' own units."""
        if self.y_shift is None:
            return out
        return out * backend.asarray(self.y_scale) + backend.asarray(self.y_shift)

    def tensors(self) -> dict[str, np.ndarray]:
        """The checkpoint's tensors (float64, so a float32 run keeps every digit of its scaling)."""
        return {PREFIX + name: np.asarray(getattr(self, name), np.float64)
                for name in PARTS if getattr(self, name) is not None}

    def entry(self) -> dict:
        """The checkpoint header's description: which scaler each side went through."""
        return {"inputs": self.inputs, "targets": self.targets}

    @classmethod
    def from_checkpoint(cls, entry, tensors: dict) -> "Scaling":
        """The scaling a checkpoint recorded; none at all for one from before scaling
        travelled with the model (it was trained on its inputs as they came)."""
        if not isinstance(entry, dict):
            return cls()
        parts = {name: tensors.get(PREFIX + name) for name in PARTS}
        return cls(str(entry.get("inputs", "none")), str(entry.get("targets", "none")), **parts)
