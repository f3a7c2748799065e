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

# The names below load on first use (PEP 562), not at `import xpnet`: the `xpnet` command's
# entry point (xpnet/command.py) then catches a Ctrl-C that lands while numpy and the rest load.
_WHERE = {"Backend": "xpnet.backends", "BackendError": "xpnet.backends", "XpnetError": "xpnet.backends",
          "resolve_backend": "xpnet.backends", "Network": "xpnet.model", "gradient_check": "xpnet.model",
          "evaluate": "xpnet.train", "learn": "xpnet.train", "load": "xpnet.train", "load_data": "xpnet.train",
          "save": "xpnet.train", "test": "xpnet.train"}
__all__ = ["__version__", *sorted(_WHERE)]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'xpnet' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
