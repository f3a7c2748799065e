"""Training: data, the learning loop, optimizers, metrics, the command line.

The only part of xpnet that talks to the user and the disk.
"""

from xpnet.train.checkpoints import load, save
from xpnet.train.data import load_data
from xpnet.train.answers import evaluate, test
from xpnet.train.loop import learn

__all__ = ["evaluate", "learn", "load", "load_data", "save", "test"]
