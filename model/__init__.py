"""The network itself: layers, activations, losses, initialisation, checkpoints.

Pure math over `backend.xp`; no files, no printing, no argument parsing.
"""

from xpnet.model.activations import ACTIVATIONS, ModelError
from xpnet.model.checkpoint import CheckpointError
from xpnet.model.dense import Dense
from xpnet.model.gradcheck import gradient_check
from xpnet.model.init import INITS
from xpnet.model.losses import LOSSES
from xpnet.model.network import Network

__all__ = ["ACTIVATIONS", "CheckpointError", "Dense", "INITS", "LOSSES", "ModelError", "Network",
           "gradient_check"]
