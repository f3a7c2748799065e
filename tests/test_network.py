"""The network: its shapes, its starting weights, its outputs, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.model import Dense, INITS, ModelError, Network
from assertions import assert_on, one_line

SIZES = [4, 6, 5, 3]


def host_inputs(n=7, width=SIZES[0], seed=0):
    return np.random.default_rng(seed).standard_normal((n, width))


# -- construction --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_from_sizes_builds_layers_of_the_right_shapes_on_the_backend(backend, dtype):
    b = backend.with_dtype(dtype)
    net = Network.from_sizes(SIZES, b, activation="tanh")
    assert net.sizes == SIZES and net.backend is b
    assert net.activations == ["tanh", "tanh", "identity"]
    assert len(net.layers) == 3 and len(net.params) == 6
    for layer, n_in, n_out in zip(net.layers, SIZES, SIZES[1:]):
        assert_on(b, layer.W, (n_out, n_in))
        assert_on(b, layer.b, (n_out,))
        assert (layer.n_in, layer.n_out) == (n_in, n_out)
        assert not np.any(b.to_numpy(layer.b))  # biases start at zero
    assert net.architecture() == {"sizes": SIZES, "activations": ["tanh", "tanh", "identity"],
                                  "loss": "cross_entropy"}


def test_output_activation_defaults(reference):
    assert Network.from_sizes([2, 3, 2], reference).activations == ["sigmoid", "identity"]
    quad = Network.from_sizes([2, 3, 2], reference, activation="tanh", loss="quadratic")
    assert quad.activations == ["tanh", "tanh"]
    assert Network.from_sizes([2, 2], reference, loss="quadratic", output="softmax").activations == ["softmax"]


N_IN, N_OUT = 400, 300
EXPECTED_STD = {  # the spread each scheme promises, for a 400 -> 300 layer
    "normal": 1 / np.sqrt(N_IN),
    "xavier": np.sqrt(6 / (N_IN + N_OUT)) / np.sqrt(3),  # uniform(-L, L) has std L / sqrt(3)
    "he": np.sqrt(2 / N_IN),
}


@pytest.mark.parametrize("init", list(INITS))
def test_init_statistics(reference, init):
    W = reference.to_numpy(Network.from_sizes([N_IN, N_OUT], reference, init=init, seed=3).layers[0].W)
    assert W.shape == (N_OUT, N_IN)
    assert abs(W.mean()) < 5 * EXPECTED_STD[init] / np.sqrt(W.size)  # 5 standard errors
    assert W.std() == pytest.approx(EXPECTED_STD[init], rel=0.01)
    if init == "xavier":
        limit = np.sqrt(6 / (N_IN + N_OUT))
        assert np.abs(W).max() <= limit and np.abs(W).max() > 0.999 * limit
    else:  # Gaussian: about 0.27% of draws beyond 3 sigma, none beyond 6
        beyond = np.mean(np.abs(W) > 3 * EXPECTED_STD[init])
        assert 0.0015 < beyond < 0.004 and np.abs(W).max() < 6 * EXPECTED_STD[init]


@pytest.mark.parametrize("init", list(INITS))
def test_same_seed_gives_the_same_weights_on_every_backend(backend, reference, init):
    net = Network.from_sizes(SIZES, backend, init=init, seed=7)
    ref = Network.from_sizes(SIZES, reference, init=init, seed=7)
    for p, r in zip(net.params, ref.params):
        np.testing.assert_array_equal(backend.to_numpy(p), reference.to_numpy(r))
    single = Network.from_sizes(SIZES, backend.with_dtype("float32"), init=init, seed=7)
    for p, r in zip(single.params, ref.params):
        assert_on(single.backend, p, r.shape)
        np.testing.assert_array_equal(single.backend.to_numpy(p), reference.to_numpy(r).astype(np.float32))


def test_different_seeds_give_different_weights(reference):
    a = Network.from_sizes(SIZES, reference, seed=1).layers[0].W
    b = Network.from_sizes(SIZES, reference, seed=2).layers[0].W
    assert not np.array_equal(a, b)


def test_seed_may_be_a_generator(reference):
    a = Network.from_sizes(SIZES, reference, seed=np.random.default_rng(5))
    b = Network.from_sizes(SIZES, reference, seed=5)
    np.testing.assert_array_equal(a.layers[2].W, b.layers[2].W)


# -- outputs ---------------------------------------------------------------------------

def test_forward_and_loss_and_grads_shapes(backend):
    net = Network.from_sizes(SIZES, backend, seed=0)
    X = host_inputs()
    T = np.eye(SIZES[-1])[np.arange(7) % 3]
    x, t = backend.asarray(X), backend.asarray(T)
    assert_on(backend, net.forward(x), (7, SIZES[-1]))
    loss, out, grads = net.loss_and_grads(x, t)
    assert_on(backend, loss, ())
    assert_on(backend, out, (7, SIZES[-1]))
    assert len(grads) == len(net.params)
    for g, p in zip(grads, net.params):
        assert_on(backend, g, tuple(p.shape))
    np.testing.assert_array_equal(backend.to_numpy(x), X)  # the batch is not touched
    np.testing.assert_array_equal(backend.to_numpy(t), T)


def test_float32_network_never_upcasts(backend):
    b = backend.with_dtype("float32")
    for settings in (dict(activation="sigmoid"), dict(activation="relu", loss="quadratic"),
                     dict(activation="tanh", output="softmax", loss="quadratic")):
        net = Network.from_sizes(SIZES, b, seed=0, **settings)
        X = host_inputs()
        T = np.eye(SIZES[-1])[np.arange(7) % 3]
        loss, out, grads = net.loss_and_grads(b.asarray(X), b.asarray(T))
        assert_on(b, loss, ())
        assert_on(b, out, (7, SIZES[-1]))
        for g in grads:
            assert_on(b, g)
        assert net.predict_proba(X).dtype == np.float32


@pytest.mark.parametrize("settings", [dict(activation="tanh"),
                                      dict(activation="sigmoid", loss="quadratic"),
                                      dict(activation="tanh", output="softmax", loss="quadratic")],
                         ids=["cross_entropy", "quadratic-sigmoid", "quadratic-softmax"])
def test_predict_proba_rows_are_probabilities(backend, settings):
    net = Network.from_sizes(SIZES, backend, seed=0, **settings)
    X = host_inputs(n=9)
    proba = net.predict_proba(X)
    assert type(proba) is np.ndarray and proba.shape == (9, SIZES[-1]) and proba.dtype == np.float64
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    labels = net.predict(X)
    assert labels.shape == (9,) and labels.dtype.kind == "i"
    np.testing.assert_array_equal(labels, proba.argmax(axis=1))


def test_predict_proba_is_softmax_of_the_logits(backend):
    net = Network.from_sizes(SIZES, backend, seed=0)
    X = host_inputs()
    logits = backend.to_numpy(net.forward(backend.asarray(X)))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(net.predict_proba(X), e / e.sum(axis=1, keepdims=True), rtol=1e-12)


def test_predict_in_batches_equals_predict_at_once(backend):
    net = Network.from_sizes(SIZES, backend, seed=0)
    X = host_inputs(n=10)
    np.testing.assert_allclose(net.predict_proba(X, batch_size=3), net.predict_proba(X), rtol=1e-13)


def test_regression_predict_returns_the_raw_outputs(backend):
    net = Network.from_sizes([2, 4, 1], backend, activation="tanh", output="identity", loss="quadratic")
    X = host_inputs(n=5, width=2)
    out = net.predict(X)
    assert out.shape == (5, 1) and out.dtype == np.float64
    np.testing.assert_array_equal(out, backend.to_numpy(net.forward(backend.asarray(X))))


def test_one_input_network_takes_a_flat_vector(reference):
    net = Network.from_sizes([1, 3, 1], reference, activation="tanh", output="identity", loss="quadratic")
    np.testing.assert_array_equal(net.predict(np.array([0.5, 1.5])), net.predict(np.array([[0.5], [1.5]])))


@pytest.mark.parametrize("kind", ["int64", "uint8", "bool"])
def test_integer_and_boolean_inputs_are_taken_as_floats(backend, kind):
    """Inputs like XOR's 0/1 ints or uint8 pixels: same answer as the float inputs, in the
    network's dtype (int64 @ float32 is float64 in numpy: a silent upcast)."""
    b = backend.with_dtype("float32")
    net = Network.from_sizes([2, 4, 3], b, activation="tanh", seed=0)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]]).astype(kind)
    proba = net.predict_proba(X)
    assert proba.dtype == np.float32
    np.testing.assert_array_equal(proba, net.predict_proba(X.astype(np.float32)))


def test_quadratic_probabilities_sum_to_one_even_when_every_output_is_negative(reference):
    """predict_proba's rows are probabilities even when no output is positive (a tanh or
    identity output under the quadratic loss can be all negative)."""
    net = Network.from_sizes([2, 3], reference, activation="tanh", loss="quadratic", seed=0)
    net.layers[0].b[...] = -5.0  # every output near -1
    proba = net.predict_proba(host_inputs(n=4, width=2))
    assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)


def test_to_another_backend_gives_identical_outputs(backend, reference):
    net = Network.from_sizes(SIZES, reference, activation="tanh", seed=4)
    moved = net.to(backend)
    assert moved.backend is backend and moved.architecture() == net.architecture()
    for p, q in zip(moved.params, net.params):
        assert_on(backend, p, q.shape)
        np.testing.assert_array_equal(backend.to_numpy(p), q)  # the very same numbers
    X = host_inputs()
    if backend.name in ("numpy", "array_api_strict"):  # same kernels underneath: bit for bit
        np.testing.assert_array_equal(moved.predict_proba(X), net.predict_proba(X))
    else:
        np.testing.assert_allclose(moved.predict_proba(X), net.predict_proba(X), rtol=1e-12, atol=1e-15)
    back = moved.to(reference)
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))


def test_to_is_a_copy(backend):
    net = Network.from_sizes(SIZES, backend, seed=0)
    twin = net.copy()
    twin.layers[0].W[...] = 0.0
    assert np.any(backend.to_numpy(net.layers[0].W))


def test_to_a_float32_backend_changes_the_dtype(backend):
    net = Network.from_sizes(SIZES, backend, seed=0)
    single = net.to(backend.with_dtype("float32"))
    for p in single.params:
        assert_on(single.backend, p)
    np.testing.assert_allclose(single.predict_proba(host_inputs()), net.predict_proba(host_inputs()),
                               rtol=1e-5, atol=1e-6)


# -- refusals, each one line -----------------------------------------------------------

@pytest.mark.parametrize("bad", [np.zeros((3, 5)), np.zeros((3, 3)), np.zeros(4), np.zeros((2, 2, 4))],
                         ids=["too-wide", "too-narrow", "1-D", "3-D"])
def test_wrong_input_shape_is_a_one_line_model_error(backend, bad):
    net = Network.from_sizes(SIZES, backend)
    with pytest.raises(ModelError) as info:
        net.predict(bad)
    text = one_line(info.value)
    assert str(bad.shape) in text and "(n, 4)" in text


def test_non_numeric_inputs_are_refused(reference):
    net = Network.from_sizes(SIZES, reference)
    with pytest.raises(ModelError) as info:
        net.predict(np.array([["a", "b", "c", "d"]]))
    assert "numbers" in one_line(info.value)


def test_layers_that_do_not_chain_are_refused(backend):
    def dense(n_in, n_out):
        return Dense(backend.asarray(np.zeros((n_out, n_in))), backend.asarray(np.zeros(n_out)), "tanh", backend)

    with pytest.raises(ModelError) as info:
        Network([dense(3, 4), dense(5, 2)])
    text = one_line(info.value)
    assert "4" in text and "5" in text
    assert Network([dense(3, 4), dense(4, 2)]).sizes == [3, 4, 2]


@pytest.mark.parametrize("sizes", [[4], [], [4, 0, 2], [4, -1]])
def test_bad_layer_sizes_are_refused(reference, sizes):
    with pytest.raises(ModelError) as info:
        Network.from_sizes(sizes, reference)
    one_line(info.value)


def test_empty_network_is_refused():
    with pytest.raises(ModelError):
        Network([])


def test_layers_on_different_backends_are_refused(reference):
    other = reference.with_dtype("float32")
    first = Dense(reference.asarray(np.zeros((4, 3))), reference.asarray(np.zeros(4)), "tanh", reference)
    second = Dense(other.asarray(np.zeros((2, 4))), other.asarray(np.zeros(2)), "tanh", other)
    with pytest.raises(ModelError) as info:
        Network([first, second])
    assert "backend" in one_line(info.value)


@pytest.mark.parametrize("settings,word", [(dict(activation="gelu"), "gelu"), (dict(loss="hinge"), "hinge"),
                                           (dict(init="orthogonal"), "orthogonal"),
                                           (dict(output="sigmoid"), "identity")])
def test_unknown_or_contradictory_settings_are_refused(reference, settings, word):
    with pytest.raises(ModelError) as info:
        Network.from_sizes(SIZES, reference, **settings)
    assert word in one_line(info.value)


def test_repr_describes_the_network(reference):
    text = repr(Network.from_sizes(SIZES, reference, activation="relu"))
    assert "4 -> 6 -> 5 -> 3" in text and "relu" in text and "cross_entropy" in text and "numpy" in text


def test_no_samples_get_no_answers(reference):
    """Predicting on an empty batch is an empty answer, not an error (training data must
    hold samples; the check of inputs is shared)."""
    net = Network.from_sizes(SIZES, reference)
    assert net.predict(np.zeros((0, SIZES[0]))).shape == (0,)
    assert net.predict_proba(np.zeros((0, SIZES[0]))).shape == (0, SIZES[-1])
