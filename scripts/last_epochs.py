"""One line per training run folder: its last epoch's speed, loss and accuracies.

scripts/gpu-check.sh prints these into its summary, so runs with and without CUDA graphs
can be compared at a glance: python3 scripts/last_epochs.py RUN_DIR...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def last_epoch(run: Path) -> str:
    """'RUN: epoch N, T s, S samples/s, loss L[, accuracy A, held-out H]', or why there is none."""
    try:
        record = json.loads((run / "history.json").read_text())[-1]
    except (OSError, ValueError, IndexError) as exc:
        return f"{run.name}: no finished epoch ({type(exc).__name__})"
    figures = [f"epoch {record['epoch']}", f"{record['seconds']:.2f} s", f"{record['samples_per_s']:,.0f} samples/s",
               f"loss {record['loss']:.4f}"]
    if "accuracy" in record:  # a classifier's
        figures.append(f"accuracy {record['accuracy']:.4f}")
    if "val_accuracy" in record:
        figures.append(f"held-out {record['val_accuracy']:.4f}")
    return f"{run.name}: " + ", ".join(figures)


if __name__ == "__main__":
    print("\n".join(last_epoch(Path(arg)) for arg in sys.argv[1:]) or "no run folders given")
