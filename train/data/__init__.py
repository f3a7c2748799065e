"""Data sets for xpnet: one call, `load_data(spec)`, turns a spec string into a `DataSet`.

The spec names where the samples come from: `letters` (synthetic English letters from the
fonts and writers xpnet installs, the default; `letters:system` adds the machine's fonts,
`letters:DIR` a folder of fonts), `idx:DIR` (MNIST / Fashion-MNIST files),
`emnist-letters:DIR`, `folder:DIR` (one sub-folder of images per class) or `npz:FILE`.
Every source ends in the same shape, so the training loop never needs to know which it got.
"""

from xpnet.train.data.dataset import DataError, DataSet
from xpnet.train.data.glyph import load_image, preprocess_image
from xpnet.train.data.spec import SCHEMES, absolute_spec, load_data, parse_spec

__all__ = [
    "DataError", "DataSet", "absolute_spec", "load_data", "parse_spec", "SCHEMES", "preprocess_image", "load_image",
]
