"""Optimizers against the textbook update rules, written out by hand in numpy float64."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from xpnet.backends import XpnetError, resolve_backend
from xpnet.model.ops import overrides
from xpnet.train.optimizers import OPTIMIZERS, Adam, OptimizerError, make_optimizer
from assertions import assert_on, one_line

LR = 0.05
STEPS = 4
SHAPES = [(3, 2), (3,)]


def host_problem(seed=0):
    """Starting parameters and one gradient per step, all on the host."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


def reference_sgd(params, grads, lr):
    """theta <- theta - alpha * dJ/dtheta (the course's rule)."""
    p = [x.copy() for x in params]
    trail = []
    for g in grads:
        p = [pi - lr * gi for pi, gi in zip(p, g)]
        trail.append(p)
    return trail


def reference_momentum(params, grads, lr, mu=0.9):
    """v <- mu v - alpha g; theta <- theta + v."""
    p, v, trail = [x.copy() for x in params], [np.zeros_like(x) for x in params], []
    for g in grads:
        v = [mu * vi - lr * gi for vi, gi in zip(v, g)]
        p = [pi + vi for pi, vi in zip(p, v)]
        trail.append(p)
    return trail


def reference_adam(params, grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Kingma & Ba, Algorithm 1, word for word: bias-corrected m-hat and v-hat."""
    p = [x.copy() for x in params]
    m, v, trail = [np.zeros_like(x) for x in params], [np.zeros_like(x) for x in params], []
    for t, g in enumerate(grads, start=1):
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        m_hat = [mi / (1 - b1 ** t) for mi in m]
        v_hat = [vi / (1 - b2 ** t) for vi in v]
        p = [pi - lr * mh / (np.sqrt(vh) + eps) for pi, mh, vh in zip(p, m_hat, v_hat)]
        trail.append(p)
    return trail


REFERENCES = {"sgd": reference_sgd, "momentum": reference_momentum, "adam": reference_adam}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_updates_match_the_formulas_step_by_step(backend, name):
    params, grads = host_problem()
    device_params = [backend.asarray(p) for p in params]
    opt = make_optimizer(name, backend, device_params, LR)
    for step, want in enumerate(REFERENCES[name](params, grads, LR)):
        device_grads = [backend.asarray(g) for g in grads[step]]
        device_params = opt.step(device_params, device_grads)
        for p, w, g, g_host in zip(device_params, want, device_grads, grads[step]):
            assert_on(backend, p, w.shape)
            np.testing.assert_allclose(backend.to_numpy(p), w, rtol=1e-12, atol=1e-15,
                                       err_msg=f"{name} step {step + 1}")
            np.testing.assert_array_equal(backend.to_numpy(g), g_host)  # gradients untouched


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_step_returns_the_new_parameters_and_changes_arrays_only_where_a_kernel_fuses(backend, name):
    """A step returns the new parameters. The reference rules change no array they are given
    (what a library of immutable arrays needs); a backend's fused update writes into the old
    arrays and returns those very arrays, so nothing new is allocated."""
    params, grads = host_problem(seed=1)
    device_params = [backend.asarray(p) for p in params]
    new = make_optimizer(name, backend, device_params, LR).step(device_params, [backend.asarray(g) for g in grads[0]])
    fused = overrides(backend, {"sgd": "sgd_update", "momentum": "momentum_update", "adam": "adam_update"}[name])
    for old, p, original in zip(device_params, new, params):
        assert not np.array_equal(backend.to_numpy(p), original)
        assert (p is old) == fused
        assert np.array_equal(backend.to_numpy(old), original) != fused


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_reference_rules_train_parameters_that_cannot_change(name):
    """numpy without its fused kernels, on read-only arrays: a stand-in for a library whose
    arrays cannot change (JAX). Every step must give new arrays, never write into old ones."""
    backend = dataclasses.replace(resolve_backend("numpy", "cpu", "float64"), kernels={})
    params, grads = host_problem(seed=4)
    device_params = [backend.asarray(p) for p in params]
    opt = make_optimizer(name, backend, device_params, LR)
    for array in device_params + [a for arrays in opt.state_lists().values() for a in arrays]:
        array.flags.writeable = False
    for step, want in enumerate(REFERENCES[name](params, grads, LR)):
        device_params = opt.step(device_params, [backend.asarray(g) for g in grads[step]])
        for p, w in zip(device_params, want):
            np.testing.assert_allclose(p, w, rtol=1e-12, atol=1e-15)
            p.flags.writeable = False


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_once_held_for_a_recording_every_array_stays_where_it_is(backend, name):
    """A recorded CUDA graph replays on the addresses it recorded. With the reference rules,
    which make new arrays, a held optimizer must write the new values into the old arrays."""
    plain = dataclasses.replace(backend, kernels={})
    params, grads = host_problem(seed=5)
    device_params = [plain.asarray(p) for p in params]
    opt = make_optimizer(name, plain, device_params, LR)
    opt.hold_on_device()
    state = opt.state()
    for step, want in enumerate(REFERENCES[name](params, grads, LR)):
        new = opt.step(device_params, [plain.asarray(g) for g in grads[step]])
        assert all(n is p for n, p in zip(new, device_params)), "a parameter moved"
        assert all(opt.state()[k] is a for k, a in state.items()), "an optimizer state array moved"
        for p, w in zip(device_params, want):
            np.testing.assert_allclose(plain.to_numpy(p), w, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_parameters_stay_float32(backend, name):
    b = backend.with_dtype("float32")
    params, grads = host_problem(seed=2)
    device_params = [b.asarray(p) for p in params]
    opt = make_optimizer(name, b, device_params, LR)
    for g in grads:
        device_params = opt.step(device_params, [b.asarray(x) for x in g])
    want = REFERENCES[name](params, grads, LR)[-1]
    for p, w in zip(device_params, want):
        assert_on(b, p, w.shape)
        np.testing.assert_allclose(b.to_numpy(p), w, rtol=1e-5, atol=1e-6)
    for array in opt.state().values():
        assert_on(b, array)


def test_adam_first_step_moves_every_parameter_by_about_lr(backend):
    """Bias correction: after one step m-hat = g and v-hat = g^2, so the step is lr * sign(g)
    whatever the gradient's size. Uncorrected, it would be lr * 0.1 / sqrt(0.001) = 3.16 lr."""
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(50)
    g = rng.choice([-1.0, 1.0], 50) * np.logspace(-2, 2, 50)  # four orders of magnitude
    p = backend.asarray(p0)
    [p] = make_optimizer("adam", backend, [p], 0.01).step([p], [backend.asarray(g)])
    np.testing.assert_allclose(backend.to_numpy(p) - p0, -0.01 * np.sign(g), rtol=1e-5)


def test_adam_bias_correction_stays_right_over_many_steps(backend):
    """A constant gradient keeps m-hat = g and v-hat = g^2 exactly at every step t."""
    g = np.array([0.5, -2.0, 1e-3])
    p = backend.asarray(np.zeros(3))
    opt = Adam(backend, [p], lr=0.1)
    for _ in range(25):
        [p] = opt.step([p], [backend.asarray(g)])
    assert opt.t == 25
    np.testing.assert_allclose(backend.to_numpy(p), -25 * 0.1 * g / (np.abs(g) + 1e-8), rtol=1e-12)


def test_optimizer_state_is_exposed_for_checkpoints(backend):
    params = [backend.asarray(p) for p in host_problem()[0]]
    assert make_optimizer("sgd", backend, params, LR).state() == {}
    momentum = make_optimizer("momentum", backend, params, LR).state()
    assert sorted(momentum) == ["velocity.0", "velocity.1"]
    adam = make_optimizer("adam", backend, params, LR).state()
    assert sorted(adam) == ["m.0", "m.1", "v.0", "v.1"]
    for key, array in {**momentum, **adam}.items():
        assert_on(backend, array, SHAPES[int(key[-1])])


def test_unknown_optimizer_is_a_one_line_error(reference):
    with pytest.raises(OptimizerError) as info:
        make_optimizer("rmsprop", reference, [], 0.1)
    text = one_line(info.value)
    assert "'rmsprop'" in text and all(name in text for name in OPTIMIZERS)
    assert issubclass(OptimizerError, XpnetError)


@pytest.mark.parametrize("lr", [0, 0.0, -0.1, math.nan, math.inf, -math.inf, "0.1", None])
def test_bad_learning_rate_is_a_one_line_error(reference, lr):
    for name in OPTIMIZERS:
        with pytest.raises(OptimizerError) as info:
            make_optimizer(name, reference, [], lr)
        assert "learning rate" in one_line(info.value)


@pytest.mark.parametrize("lr", [np.float64(0.1), np.float32(0.1), 1])
def test_numeric_learning_rates_of_any_type_are_accepted(reference, lr):
    """A rate computed with numpy (np.float32 from a float32 array, say) is a number too."""
    p = reference.asarray(np.ones(2))
    [p] = make_optimizer("sgd", reference, [p], lr).step([p], [reference.asarray(np.ones(2))])
    np.testing.assert_allclose(reference.to_numpy(p), 1 - float(lr), rtol=1e-7)


# -- the update folded into backpropagation (Network.train_step) ---------------------------------
def run_train_steps(backend, optimizer: str, fold: bool, dtype: str, decay: float = 0.0):
    """Three steps on a small network from host-made data: `train_step` with SGD's update
    folded into the gradient products (forced on, whatever the backend's default), or the
    unfolded loss_and_grads + step; `decay` is the weight decay."""
    from xpnet.model import Network
    from xpnet.train.optimizers import SGD

    backend = backend.with_dtype(dtype)
    rng = np.random.default_rng(11)
    X, labels = rng.standard_normal((24, 12)), rng.integers(0, 5, 24)
    net = Network.from_sizes([12, 9, 7, 5], backend, activation="relu", loss="cross_entropy", seed=0)
    opt = SGD(backend, net.params, LR, momentum=0.9 if optimizer == "momentum" else 0.0, fold=fold,
              weight_decay=decay)
    x, t = backend.asarray(X), backend.asarray(np.eye(5)[labels])
    for _ in range(3):
        net.train_step(x, t, opt)
    return [backend.to_numpy(p) for p in net.params] + [backend.to_numpy(s) for s in opt.state().values()]


@pytest.mark.parametrize("decay", [0.0, 0.3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_folded_step_is_the_same_step(backend, optimizer, dtype, decay):
    """With weight decay too: plain SGD folds it into gemm's beta, momentum into the velocity."""
    folded = run_train_steps(backend, optimizer, True, dtype, decay)
    unfolded = run_train_steps(backend, optimizer, False, dtype, decay)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-14)
    for mine, ref in zip(folded, unfolded):
        np.testing.assert_allclose(mine, ref, **tol)
    if decay:  # the decay moved the weights: a fold that dropped it would differ from the reference
        undecayed = run_train_steps(backend, optimizer, True, dtype)
        assert not np.allclose(folded[0], undecayed[0], **tol)


@pytest.mark.parametrize("fold", [True, False])
def test_momentum_with_weight_decay_follows_the_written_rule_while_the_rate_changes(reference, fold):
    """By hand, step after step, with the rate changed between steps as a schedule does:
    g = dW + lambda * W for weights (biases undecayed), v = mu * v - lr * g, W += v."""
    from xpnet.model import Network
    from xpnet.train.optimizers import SGD

    backend = reference.with_dtype("float64")
    rng = np.random.default_rng(5)
    X, labels = rng.standard_normal((16, 6)), rng.integers(0, 4, 16)
    net = Network.from_sizes([6, 5, 4], backend, activation="relu", loss="cross_entropy", seed=1)
    mu, decay = 0.9, 0.05
    opt = SGD(backend, net.params, 0.1, momentum=mu, fold=fold, weight_decay=decay)
    x, t = backend.asarray(X), backend.asarray(np.eye(4)[labels])
    want = [backend.to_numpy(p) for p in net.params]
    velocity = [np.zeros_like(p) for p in want]
    for lr in (0.1, 0.03, 0.2, 0.01):
        grads = [backend.to_numpy(g) for g in net.loss_and_grads(x, t)[2]]
        for i, (p, g) in enumerate(zip(want, grads)):
            velocity[i] = mu * velocity[i] - lr * (g + decay * p if p.ndim > 1 else g)
            want[i] = p + velocity[i]
        opt.lr = lr
        net.train_step(x, t, opt)
        for mine, ref in zip(net.params, want):
            np.testing.assert_allclose(backend.to_numpy(mine), ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_folded_reference_is_the_same_arithmetic(reference, optimizer):
    """With no fused kernels, the fold performs the unfolded step's very roundings
    (p += (-lr) * g is p -= lr * g), so the two agree bit for bit."""
    import dataclasses

    plain = dataclasses.replace(reference, kernels={})
    folded = run_train_steps(plain, optimizer, True, "float64")
    for mine, ref in zip(folded, run_train_steps(plain, optimizer, False, "float64")):
        np.testing.assert_array_equal(mine, ref)


def test_sgd_folds_where_the_backend_has_a_fused_product(reference):
    """numpy (BLAS gemm) folds; a backend without a fused matmul_add (cupy, torch, the plain
    path) takes gradients then the step; Adam, which needs g element by element, never folds."""
    import dataclasses

    plain = dataclasses.replace(reference, kernels={})
    folds = {(name, b.kernels is plain.kernels): getattr(make_optimizer(name, b, [], LR), "folds", False)
             for name in OPTIMIZERS for b in (reference, plain)}
    assert folds == {("sgd", False): True, ("momentum", False): True, ("adam", False): False,
                     ("sgd", True): False, ("momentum", True): False, ("adam", True): False}
    decayed = {name: make_optimizer(name, reference, [], LR, weight_decay=1e-4).folds for name in OPTIMIZERS}
    assert decayed == {"sgd": True, "momentum": True, "adam": False}  # weight decay folds too
