"""Array backends: one immutable `Backend` per array library, chosen at run time.

A backend bundles the array-API namespace `xp` with the device the arrays live on and the
float dtype the model computes in. The rest of xpnet writes its math once against `xp`;
host/device traffic happens only through `Backend.asarray` (in) and `Backend.to_numpy` (out).
"""

from xpnet.backends.base import Backend
from xpnet.backends.errors import XpnetError
from xpnet.backends.registry import BACKENDS, PLACES, BackendError, describe_all, resolve_backend

__all__ = ["BACKENDS", "PLACES", "Backend", "BackendError", "XpnetError", "describe_all", "resolve_backend"]
