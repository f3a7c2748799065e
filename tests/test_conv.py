"""Convolution, pooling, Flatten and Dropout, each checked on every backend in float64.

Three levels, as for the dense layers (tests/test_gradcheck.py): the window ops against
loops written out by hand; each layer alone by llm.c's trick (a random upstream dy, then the
gradient of sum(y * dy) with respect to its parameters and its input, against central
differences); and whole networks through `gradient_check`. Bad shapes are one line naming
the layer.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from xpnet.model import Network, gradient_check
from xpnet.model.activations import ModelError
from xpnet.model.gradcheck import relative_error
from xpnet.model.layers import layer_from, parse_layers
from xpnet.model.ops import op
from assertions import assert_on, one_line

EPS, WORST = 1e-6, 1e-6


def windows_by_loops(x, kh, kw, stride):
    """im2col as its definition: every window, flattened (channel, row, column), a column each."""
    B, C, H, W = x.shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    columns = [x[b, :, i * stride:i * stride + kh, j * stride:j * stride + kw].ravel()
               for b in range(B) for i in range(Ho) for j in range(Wo)]
    return np.array(columns).T


@pytest.mark.parametrize("shape,kh,kw,stride", [((2, 3, 7, 6), 3, 3, 1), ((2, 2, 8, 9), 3, 2, 2),
                                                ((1, 1, 5, 5), 5, 5, 1), ((2, 3, 9, 7), 2, 3, 3)])
def test_windows_are_every_window_and_their_gradient_is_the_transpose(backend, shape, kh, kw, stride):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    cols = op(backend, "im2col")(backend.xp, backend.asarray(x), kh, kw, stride)
    want = windows_by_loops(x, kh, kw, stride)
    assert_on(backend, cols, want.shape)
    np.testing.assert_array_equal(backend.to_numpy(cols), want)
    d = rng.standard_normal(want.shape)  # <im2col(x), d> = <x, col2im(d)>: col2im is im2col's adjoint
    back = op(backend, "col2im")(backend.xp, backend.asarray(d), shape, kh, kw, stride)
    assert_on(backend, back, shape)
    assert np.vdot(want, d) == pytest.approx(np.vdot(x, backend.to_numpy(back)), rel=1e-12)


def layer_check(backend, desc, in_shape, batch=3, seed=0):
    """Worst relative error of one layer's dW, db (where it has them) and dx against central
    differences of sum(y * dy), for a random dy."""
    rng = np.random.default_rng(seed)
    layer = layer_from(desc, in_shape, backend, init="xavier", rng=rng)
    x = rng.standard_normal((batch, *in_shape))
    y, cache = layer.forward(backend.asarray(x), training=True)
    assert_on(backend, y, (batch, *layer.out_shape))
    dy = rng.standard_normal((batch, *layer.out_shape))
    dx, grads = layer.backward(backend.asarray(dy), cache)
    host = [backend.to_numpy(p) for p in layer.params]

    def objective(params, x_):
        layer.params = [backend.asarray(p) for p in params]
        return float(np.sum(backend.to_numpy(layer.forward(backend.asarray(x_), training=True)[0]) * dy))

    worst = 0.0
    for k, p in enumerate(host):
        numeric = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            up, down = [q.copy() for q in host], [q.copy() for q in host]
            up[k][idx] += EPS
            down[k][idx] -= EPS
            numeric[idx] = (objective(up, x) - objective(down, x)) / (2 * EPS)
        worst = max(worst, relative_error(backend.to_numpy(grads[k]), numeric))
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += EPS
        down[idx] -= EPS
        numeric[idx] = (objective(host, up) - objective(host, down)) / (2 * EPS)
    assert_on(backend, dx, x.shape)
    return max(worst, relative_error(backend.to_numpy(dx), numeric))


CONV = {"kind": "conv", "activation": "tanh"}
LAYERS = {
    "conv3x3 same, one channel": ({**CONV, "filters": 2, "kernel": [3, 3]}, (1, 5, 5)),
    "conv3x3 same, three channels, odd sizes": ({**CONV, "filters": 4, "kernel": [3, 3]}, (3, 5, 7)),
    "conv2x3 same, stride 2": ({**CONV, "filters": 3, "kernel": [2, 3], "stride": 2}, (2, 7, 6)),
    "conv4x4 same (even kernel)": ({**CONV, "filters": 2, "kernel": [4, 4]}, (1, 6, 5)),
    "conv3x3 valid, stride 2": ({**CONV, "filters": 2, "kernel": [3, 3], "stride": 2, "padding": "valid"}, (2, 7, 8)),
    "conv relu": ({**CONV, "activation": "relu", "filters": 3, "kernel": [3, 3]}, (2, 4, 4)),
    "maxpool2": ({"kind": "maxpool", "size": 2}, (2, 4, 6)),
    "maxpool2, odd sizes": ({"kind": "maxpool", "size": 2}, (2, 5, 7)),
    "maxpool3": ({"kind": "maxpool", "size": 3}, (1, 6, 7)),
    "avgpool2, odd sizes": ({"kind": "avgpool", "size": 2}, (3, 5, 5)),
    "flatten": ({"kind": "flatten"}, (2, 3, 4)),
    "dropout": ({"kind": "dropout", "rate": 0.4, "seed": 3}, (2, 3, 3)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_each_layer_backpropagates_its_gradients(backend, name):
    desc, in_shape = LAYERS[name]
    assert layer_check(backend, desc, in_shape) < WORST


@pytest.mark.parametrize("words,shape", [(["conv3x3", "pool2", 5], (1, 6, 6)),
                                         (["conv2x3s2", "avgpool2", "conv3x2valid", 4], (2, 9, 8)),
                                         (["conv4x3", "maxpool3", "dropout0.3", 5], (1, 7, 7))])
@pytest.mark.parametrize("loss", ["cross_entropy", "quadratic"])
def test_whole_convolutional_networks_pass_the_gradient_check(backend, words, shape, loss):
    net = Network.from_layers(words, shape, 3, backend, activation="tanh", loss=loss, seed=1)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4, int(np.prod(shape))))
    assert gradient_check(net, X, rng.integers(0, 3, 4)) < WORST


@pytest.mark.parametrize("words,shape,named", [
    (["conv4x9valid", 5], (1, 6, 6), "conv4x9valid: a 9x9 kernel"),  # a kernel larger than its input
    (["conv4x3", 5], (6, 6, 1), "(images are channels x height x width: (1, 6, 6), not (6, 6, 1))"),
    (["conv4x3", "pool2", "conv4x5", 5], (1, 7, 7), "5x5 kernel is larger than its 3x3"),  # padded or not
    (["conv4x3", "pool8", 5], (1, 6, 6), "maxpool8"),
    ([5, "conv4x3"], (36,), "conv4x3"),  # images expected, rows given
    (["conv0x3", 5], (1, 6, 6), "conv0x3"),
    (["conv4x3", "dropout1.5"], (1, 6, 6), "dropout1.5"),
    (["convolution", 5], (1, 6, 6), "convolution"),
])
def test_bad_shapes_and_words_are_one_line_naming_the_layer(reference, words, shape, named):
    with pytest.raises(ModelError) as info:
        Network.from_layers(words, shape, 3, reference)
    assert named in one_line(info.value)


def test_a_layer_string_reads_as_on_the_command_line_and_a_row_length_as_a_shape(reference):
    net = Network.from_layers("conv4x3, pool2,16,", (1, 8, 8), 3, reference)
    assert net.summary == Network.from_layers(["conv4x3", "pool2", 16], (1, 8, 8), 3, reference).summary
    assert Network.from_layers([16], 64, 3, reference).input_shape == (64,)


@pytest.mark.parametrize("shape", [None, True, 2.5, (1, "8", 8), 0])
def test_an_input_shape_that_is_not_one_is_one_line(reference, shape):
    with pytest.raises(ModelError, match=f"input shape and the number of outputs must be whole numbers of 1 or "
                                         f"more, got {re.escape(repr(shape))} and 3"):
        Network.from_layers([16], shape, 3, reference)


@pytest.mark.parametrize("stride", [0, -1, 1.5, True])
def test_a_conv_built_by_hand_refuses_a_stride_that_is_not_one(reference, stride):
    from xpnet.model.conv import Conv2D

    W, b = reference.asarray(np.ones((2, 1, 3, 3))), reference.asarray(np.zeros(2))
    named = "conv2x3" if stride is True else f"conv2x3s{stride}"  # the layer as it was asked for
    with pytest.raises(ModelError, match=f"^{re.escape(named)}: the stride must be a whole number of 1 or more"):
        Conv2D(W, b, "relu", reference, (1, 6, 6), stride)


@pytest.mark.parametrize("word", ["dropout1", "dropout1.5", "dropout-0.1"])
def test_a_dropout_rate_out_of_range_says_what_a_rate_is(word):
    with pytest.raises(ModelError, match=f"layer '{word}': dropout's rate is a share of the values, at least 0 and "
                                         "below 1"):
        parse_layers([word])


def test_dropout_is_off_at_test_time_and_keeps_the_expected_sum(reference):
    layer = layer_from({"kind": "dropout", "rate": 0.25, "seed": 1}, (1000,), reference)
    x = reference.asarray(np.ones((20, 1000)))
    np.testing.assert_array_equal(reference.to_numpy(layer.forward(x)[0]), 1.0)
    first = reference.to_numpy(layer.forward(x, training=True)[0])
    assert np.mean(first == 0) == pytest.approx(0.25, abs=0.01)
    assert np.mean(first) == pytest.approx(1.0, abs=0.02)  # the survivors scaled by 1 / (1 - rate)
    np.testing.assert_array_equal(reference.to_numpy(layer.forward(x, training=True)[0]), first)
    layer.advance()  # the next training step: a new mask
    assert not np.array_equal(reference.to_numpy(layer.forward(x, training=True)[0]), first)


def test_the_same_seed_draws_the_same_masks_on_every_backend(backend, reference):
    masks = []
    for b in (backend, reference):
        layer = layer_from({"kind": "dropout", "rate": 0.5, "seed": 7, "steps": 3}, (4, 5), b)
        masks.append(b.to_numpy(layer.forward(b.asarray(np.ones((6, 4, 5))), training=True)[0]))
    np.testing.assert_array_equal(*masks)
