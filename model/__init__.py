"""The network itself: layers, activations, losses, initialisation, checkpoints.

Pure math over `backend.xp`; no files, no printing, no argument parsing.
"""

from model.activations import ACTIVATIONS, ModelError
from model.checkpoint import CheckpointError
from model.dense import Dense
from model.gradcheck import gradient_check
from model.init import INITS
from model.losses import LOSSES
from model.network import Network

__all__ = ["ACTIVATIONS", "CheckpointError", "Dense", "INITS", "LOSSES", "ModelError", "Network",
           "gradient_check"]
