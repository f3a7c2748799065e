"""Every fused kernel a backend overrides must equal the plain xp reference it replaces.

Runs over the shared backend fixture; a backend with no overrides has nothing to check and
is skipped with that reason. Inputs are made on the host; outputs come back as numpy.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xpnet.model.activations import ACTIVATIONS, ModelError
from xpnet.model import Network
from xpnet.model.ops import OPS, op, overrides
from xpnet.model.windows import maxpool

TOL = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-14)}


def _host_inputs(key: str, rng):
    z = rng.standard_normal((7, 5)) * 3
    if key.startswith("bias_act"):
        return [z, rng.standard_normal(5)]
    if key.startswith("act_grad"):
        y = ACTIVATIONS[key.split(".")[1]][0](np, z)
        return [y, rng.standard_normal((7, 5))]
    if key.startswith("loss"):
        return [z, np.eye(5)[rng.integers(0, 5, 7)]]
    if key == "matmul_add":  # c (5, 3) += dz.T @ x, with dz (7, 5) and x (7, 3): the SGD fold
        return [rng.standard_normal((5, 3)), rng.standard_normal((7, 5)).T, rng.standard_normal((7, 3))]
    if key == "matmul":  # x (7, 5) @ W.T (5, 3)
        return [z, rng.standard_normal((5, 3))]
    if key == "sum_add":  # c (5,) += column sums of z
        return [rng.standard_normal(5), z]
    if key in ("pad2d", "im2col"):  # images (B, C, H, W)
        return [rng.standard_normal((2, 3, 7, 6))]
    if key == "col2im":  # the windows of a (2, 3, 7, 6) image, 3x3 at stride 2: 2 * 3 * 2 columns
        return [rng.standard_normal((27, 12))]
    if key == "col2im_matmul":  # W.T (3 * 3 * 3, 4) and dz (4, 2 * 5 * 4): a 3x3 stride-1 conv's on (2, 3, 7, 6)
        return [rng.standard_normal((27, 4)), rng.standard_normal((4, 40))]
    if key == "unpool":  # the 4 positions of 2x2 blocks
        return [[rng.standard_normal((2, 3, 3, 2)) for _ in range(4)]]
    if key == "maxpool":  # an image whose blocks tie (whole numbers), 2x2 blocks leaving a row and a column
        return [np.round(rng.standard_normal((2, 3, 7, 5)))]
    if key == "maxpool_grad":  # dy, and the reference's masks of where each block's maximum was
        _, winners = maxpool(np, np.round(rng.standard_normal((2, 3, 7, 5))), 2)
        return [rng.standard_normal((2, 3, 3, 2)), winners]
    n_state = {"sgd_update": 0, "momentum_update": 1, "adam_update": 2}[key]
    return [z, rng.standard_normal((7, 5))] + [np.abs(rng.standard_normal((7, 5))) for _ in range(n_state)]


_SCALARS = {"sgd_update": (0.1,), "momentum_update": (0.1, 0.9), "adam_update": (0.01, 0.9, 0.999, 1e-8),
            "matmul_add": (-0.1, 0.9), "sum_add": (-0.1, 0.9),
            "pad2d": ((1, 2, 0, 1),), "im2col": (3, 2, 2), "col2im": ((2, 3, 7, 6), 3, 3, 2),
            "col2im_matmul": ((2, 3, 7, 6), 3, 3, 1, OPS["matmul"]),
            "unpool": ((2, 3, 7, 4), 2), "maxpool": (2,), "maxpool_grad": ((2, 3, 7, 5), 2)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_override_matches_its_reference(backend, dtype):
    backend = backend.with_dtype(dtype)
    if not backend.kernels:
        pytest.skip(f"{backend.name} overrides no ops")
    rng = np.random.default_rng(0)
    for key, kernel in backend.kernels.items():
        host = _host_inputs(key, rng)
        results = []
        for fn in (kernel, OPS[key]):  # an override of an op the table lacks fails here
            arrays = [[backend.asarray(p) for p in h] if isinstance(h, list) else backend.asarray(h) for h in host]
            out = fn(backend.xp, *arrays, *_SCALARS.get(key, ()))
            outs = list(out) if isinstance(out, tuple) else [out]
            if key == "maxpool":  # the maximum, then its k * k masks
                outs = [outs[0], *outs[1]]
            if fn is kernel and key.endswith(("_update", "_add")):  # an override updates in place: the arrays it was given come back
                changed = [arrays[0]] + arrays[2:] if key.endswith("_update") else [arrays[0]]
                assert len(outs) == len(changed) and all(o is a for o, a in zip(outs, changed)), key
            results.append([backend.to_numpy(o) for o in outs])
        assert len(results[0]) == len(results[1]), key
        for got, want in zip(*results):
            assert got.dtype == want.dtype == (np.dtype(dtype) if want.dtype != bool else bool), key
            np.testing.assert_allclose(got, want, err_msg=key, **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_overridden_product_takes_every_layout_a_layer_multiplies(backend, dtype):
    """x @ W.T, dz @ W and dz.T @ x: C- and F-ordered operands (transposed views), and a
    strided one that the override must hand back to the library's own matmul."""
    backend = backend.with_dtype(dtype)
    if "matmul" not in backend.kernels:
        pytest.skip(f"{backend.name} does not override the matrix product")
    rng = np.random.default_rng(1)
    x, W, dz = (backend.asarray(rng.standard_normal(s)) for s in ((7, 5), (3, 5), (7, 3)))
    product = backend.kernels["matmul"]
    for a, b in ((x, W.T), (dz, W), (dz.T, x), (x[::2], W.T), (x[:, ::2], W[:, ::2].T)):
        got = backend.to_numpy(product(backend.xp, a, b))
        want = backend.to_numpy(a) @ backend.to_numpy(b)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, **TOL[dtype])


def test_asking_for_an_op_that_does_not_exist_is_an_error(reference):
    with pytest.raises(ModelError, match="unknown op 'bias_act.sigmod': use one of matmul, bias_act.sigmoid"):
        op(reference, "bias_act.sigmod")
    assert op(reference, "bias_act.sigmoid") is reference.kernels["bias_act.sigmoid"]  # numpy's fused one


def test_a_kernel_named_after_no_op_is_an_error_not_a_kernel_never_used(reference):
    """A backend whose kernel name is misspelt would otherwise train on the slower reference
    without a word."""
    misspelt = dataclasses.replace(reference, kernels={**reference.kernels, "sgd_updat": lambda *a: None})
    with pytest.raises(ModelError, match=r"numpy has kernels for ops that do not exist \(sgd_updat\)"):
        overrides(misspelt, "matmul")
    with pytest.raises(ModelError, match="sgd_updat"):
        Network.from_sizes([2, 3], misspelt)
