"""Training: data, the learning loop, optimizers, metrics, the command line.

The only part of xpnet that talks to the user and the disk.
"""

from train.loop import evaluate, learn, test

__all__ = ["evaluate", "learn", "test"]
