"""xpnet: a deep neural network from first principles, written once against the array API.

    import xpnet
    model = xpnet.Network.from_sizes([784, 128, 26], xpnet.resolve_backend(), activation="relu",
                                     output="identity", loss="cross_entropy")
    xpnet.learn(model, (X, y))        # gradient descent, as the course's learn(model, data)
    xpnet.test(model, x)              # the class (or value) the model answers for x

The code lives in three subpackages, which are the repository's top-level folders:
`xpnet.backends` (backends/: the array libraries), `xpnet.model` (model/: layers, losses,
the network) and `xpnet.train` (train/: data, the loop, the command line). Installed, they
sit under this package, so nothing named `model` or `train` lands at the top of
site-packages to collide with a user's own `model.py`.
"""

from pathlib import Path

# Run from a checkout (python -m xpnet, or PYTHONPATH=the repository), this folder holds only
# this file: the subpackages are found beside it, in the repository's top-level folders. An
# installed xpnet has them inside this folder and needs nothing here.
if not (Path(__file__).parent / "train").is_dir():
    __path__.append(str(Path(__file__).resolve().parent.parent))  # noqa: F821 (a package's own __path__)

from xpnet.version import __version__  # noqa: E402
from xpnet.backends import Backend, BackendError, XpnetError, resolve_backend  # noqa: E402
from xpnet.model import Network, gradient_check  # noqa: E402
from xpnet.train import evaluate, learn, load, load_data, save, test  # noqa: E402

__all__ = ["Backend", "BackendError", "Network", "XpnetError", "__version__", "evaluate", "gradient_check",
           "learn", "load", "load_data", "resolve_backend", "save", "test"]
