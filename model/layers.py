"""Networks from a short description, and every layer kind by name.

`--layers conv32x3,pool2,conv64x3,pool2,256` reads left to right: 32 3x3 filters, a 2x2 max
pool, 64 more filters, another pool, then 256 dense units; the output layer (one unit per
class) is added after, and a Flatten wherever a dense layer follows images. Each word is a
row of WORDS; `describe()` of the layer it makes is what a checkpoint stores, and KINDS
rebuilds a layer from that description and its parameters.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np

from xpnet.backends import Backend
from xpnet.model.activations import ModelError
from xpnet.model.conv import Conv2D, conv_word
from xpnet.model.dense import Dense
from xpnet.model.init import init_weights
from xpnet.model.pool import AvgPool2D, MaxPool2D
from xpnet.model.reshape import Dropout, Flatten

# word pattern -> (what it means, the description of the layer it makes)
WORDS = {
    r"(\d+)": ("256: a dense layer of 256 units", lambda m: {"kind": "dense", "units": int(m[1])}),
    r"conv(\d+)x(\d+)(?:s(\d+))?(valid)?": (
        "conv32x3: 32 filters of 3x3 (conv32x5s2: stride 2; conv32x3valid: no padding)",
        lambda m: {"kind": "conv", "filters": int(m[1]), "kernel": [int(m[2])] * 2, "stride": int(m[3] or 1),
                   "padding": "valid" if m[4] else "same"}),
    r"(?:max)?pool(\d+)": ("pool2: the largest of each 2x2 block", lambda m: {"kind": "maxpool", "size": int(m[1])}),
    r"avgpool(\d+)": ("avgpool2: the mean of each 2x2 block", lambda m: {"kind": "avgpool", "size": int(m[1])}),
    r"dropout(-?\d*\.?\d+)": ("dropout0.5: zero half the values while training",
                            lambda m: {"kind": "dropout", "rate": float(m[1])}),
    r"flatten": ("flatten: images to rows (added by itself before a dense layer)", lambda m: {"kind": "flatten"}),
}


def parse_layers(words: Sequence | str) -> list[dict]:
    """Layer descriptions from words such as ["conv32x3", "pool2", 256], or the command line's
    "conv32x3,pool2,256"; a one-line error naming the word that is not one."""
    if isinstance(words, str):  # else each letter would be read as a word
        words = [word for word in words.split(",") if word.strip()]
    out = []
    for word in words:
        text = str(word).strip().lower()
        for pattern, (_, describe) in WORDS.items():
            match = re.fullmatch(pattern, text)
            if match:
                out.append(describe(match))
                numbers = [out[-1].get(key, 1) for key in ("units", "filters", "stride", "size")]
                if min(numbers + out[-1].get("kernel", [])) < 1:
                    raise ModelError(f"layer {word!r}: sizes, filters, kernels and strides must be at least 1")
                if not 0 <= out[-1].get("rate", 0) < 1:
                    raise ModelError(f"layer {word!r}: dropout's rate is a share of the values, at least 0 and "
                                     "below 1, such as dropout0.25")
                break
        else:
            raise ModelError(f"layer {word!r} is not understood: use " + "; ".join(w for w, _ in WORDS.values()))
    return out


def same_layers(layers: Sequence, words: Sequence) -> bool:
    """Whether `layers` (before the output layer) are what `words` describe: a resumed run's
    checkpoint must hold the network its config asks for."""
    def shape_only(descs):
        return [{k: v for k, v in d.items() if k not in ("activation", "seed", "steps")}
                for d in descs if d["kind"] != "flatten"]

    return shape_only([layer.describe() for layer in layers[:-1]]) == shape_only(parse_layers(words))


def build_layers(words: Sequence, input_shape: tuple, n_out: int, backend: Backend, *, activation: str,
                 output: str, init: str, rng: np.random.Generator) -> list:
    """The layers `words` describe, then the output layer, with weights drawn from `rng`."""
    if not isinstance(backend, Backend):  # a name would fail deep inside, at the first array
        raise ModelError(f"give a Backend, such as xpnet.resolve_backend({backend!r}), not {type(backend).__name__}")
    try:
        shape = (input_shape,) if isinstance(input_shape, (int, np.integer)) else tuple(input_shape)  # 64: rows
    except TypeError:  # None, or another thing that is not a shape
        shape = ()
    if not shape or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in (*shape, n_out)):
        raise ModelError(f"the input shape and the number of outputs must be whole numbers of 1 or more, "
                         f"got {input_shape!r} and {n_out!r}")
    layers = []
    for desc in parse_layers(words) + [{"kind": "dense", "units": n_out, "activation": output}]:
        if desc["kind"] == "dense" and len(shape) > 1:
            layers.append(Flatten(backend, shape))
            shape = layers[-1].out_shape
        if desc["kind"] in ("dense", "conv"):
            desc = {"activation": activation, **desc}
        if desc["kind"] == "dropout":
            desc["seed"] = int(rng.integers(2 ** 31))
        layers.append(layer_from(desc, shape, backend, None, init, rng))
        shape = layers[-1].out_shape
    return layers


def layer_from(desc: dict, in_shape: tuple, backend: Backend, params: list | None = None,
               init: str = "he", rng: np.random.Generator | None = None):
    """The layer a description names, taking input of one sample's `in_shape`: with the given
    host `params` (a checkpoint's), or new ones drawn by `init` from `rng`."""
    kind = desc.get("kind")
    if kind not in KINDS:
        raise ModelError(f"unknown layer kind {kind!r}: xpnet knows {', '.join(KINDS)}")
    return KINDS[kind](desc, tuple(in_shape), backend, params, init, rng)


def _dense(desc, in_shape, backend, params, init, rng):
    n_out = _whole(desc.get("units"), "units", f"dense layer {desc.get('units')!r}")
    if len(in_shape) != 1:
        raise ModelError(f"dense layer {n_out}: takes rows, got input of shape {in_shape}: add flatten before it")
    W, b = params or (init_weights(init, rng, in_shape[0], n_out), np.zeros(n_out))
    _check_shapes(f"dense layer {n_out}", (W, b), [(n_out, in_shape[0]), (n_out,)])
    return Dense(backend.asarray(W), backend.asarray(b), desc["activation"], backend)


def _conv(desc, in_shape, backend, params, init, rng):
    kernel = list(desc["kernel"]) if isinstance(desc.get("kernel"), (list, tuple)) else []
    if len(kernel) != 2:
        raise ModelError(f"conv{desc.get('filters')}: the kernel is its height and width, got {desc.get('kernel')!r}")
    word = conv_word(desc.get("filters"), kernel, desc.get("stride", 1), desc.get("padding"))
    F, stride = _whole(desc.get("filters"), "filters", word), _whole(desc.get("stride", 1), "stride", word)
    kh, kw = (_whole(k, "kernel", word) for k in kernel)
    if len(in_shape) != 3:
        raise ModelError(f"{word}: takes images (channels, height, width), got input of shape {in_shape}")
    C = in_shape[0]
    if params is None:
        W = init_weights(init, rng, C * kh * kw, F).reshape(F, C, kh, kw)  # fan-in: one window
        params = (W, np.zeros(F))
    _check_shapes(word, params, [(F, C, kh, kw), (F,)])
    W, b = params
    return Conv2D(backend.asarray(W), backend.asarray(b), desc["activation"], backend, in_shape, stride,
                  desc.get("padding", "same"))


def _pool(cls):
    return lambda desc, in_shape, backend, params, init, rng: cls(
        _whole(desc.get("size"), "size", f"{cls.kind}{desc.get('size')}"), backend, in_shape)


def _dropout(desc, in_shape, backend, params, init, rng):
    word = f"dropout{desc.get('rate')}"
    return Dropout(float(desc["rate"]), _whole(desc.get("seed"), "seed", word, least=0), backend, in_shape,
                   _whole(desc.get("steps", 0), "steps", word, least=0))


def _whole(value, what: str, word: str, least: int = 1) -> int:
    """A layer's setting as an int, or a one-line error naming the layer: a checkpoint edited to
    say 2.7 would otherwise load as another network than the one it describes."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value != int(value) or value < least:
        raise ModelError(f"{word}: its {what} must be a whole number of {least} or more, got {value!r}")
    return int(value)


def _check_shapes(name: str, params, shapes) -> None:
    got = [tuple(np.shape(p)) for p in params]
    if got != [tuple(s) for s in shapes]:
        raise ModelError(f"{name}: parameters of shapes {got}, expected {shapes}")


# kind (as `describe()` names it) -> its builder
KINDS = {
    "dense": _dense, "conv": _conv, "maxpool": _pool(MaxPool2D), "avgpool": _pool(AvgPool2D),
    "flatten": lambda desc, in_shape, backend, params, init, rng: Flatten(backend, in_shape),
    "dropout": _dropout,
}


def image_shape(n_features: int, given: Sequence[int] | None = None) -> tuple:
    """One sample's (channels, height, width): `given`, else a square one-channel image when
    n_features is a square number (28 * 28 = 784, the letters)."""
    if given is not None:
        shape = tuple(int(s) for s in given)
        if len(shape) != 3 or math.prod(shape) != n_features:
            raise ModelError(f"image shape {'x'.join(map(str, shape))} holds {math.prod(shape)} values, but "
                             f"samples have {n_features} features")
        return shape
    side = math.isqrt(n_features)
    if side * side != n_features:
        raise ModelError(f"samples of {n_features} features are not square images: give the image shape "
                         "as channels x height x width")
    return (1, side, side)


def describe_layers(layers) -> str:
    """conv32x3 -> maxpool2 -> flatten -> 26: a network's layers in a line."""
    return " -> ".join(layer.word() for layer in layers)
