"""Backends: which one is chosen, what it refuses, and how arrays cross the host/device line.

`assert_on`, the one definition of "this array lives on this backend", lives in tests/assertions.py;
it checks namespace, device, dtype and shape, not only values.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

from assertions import assert_on, one_line
from xpnet.backends import BACKENDS, BackendError, XpnetError, describe_all, resolve_backend


@pytest.fixture
def clean_env(monkeypatch):
    """No XPNET_* variables from the caller's shell leak into a resolution test."""
    monkeypatch.delenv("XPNET_BACKEND", raising=False)
    monkeypatch.delenv("XPNET_DEVICE", raising=False)
    return monkeypatch


def without_cupy(monkeypatch):
    """Make `import cupy` fail, as on a machine without it, whatever is installed here."""
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setitem(sys.modules, "array_api_compat.cupy", None)


# -- resolution precedence ---------------------------------------------------------------

def test_explicit_name_beats_the_environment(clean_env):
    clean_env.setenv("XPNET_BACKEND", "array_api_strict")
    assert resolve_backend("numpy", "cpu").name == "numpy"


def test_environment_is_read_at_call_time(clean_env):
    clean_env.setenv("XPNET_BACKEND", "array_api_strict")  # set after `backends` was imported
    backend = resolve_backend()
    assert backend.name == "array_api_strict"
    assert backend.note == ""  # named, not chosen by auto
    clean_env.setenv("XPNET_BACKEND", "numpy")
    assert resolve_backend().name == "numpy"


def test_empty_environment_variable_counts_as_unset(clean_env):
    without_cupy(clean_env)
    clean_env.setenv("XPNET_BACKEND", "")
    assert resolve_backend().note.startswith("auto: numpy")


def test_environment_name_is_validated_like_an_argument(clean_env):
    clean_env.setenv("XPNET_BACKEND", "tensorflow")
    with pytest.raises(BackendError, match="tensorflow"):
        resolve_backend()


def test_device_from_environment_is_checked(clean_env):
    clean_env.setenv("XPNET_DEVICE", "cuda")
    with pytest.raises(BackendError, match="CPU only"):
        resolve_backend("numpy")


def test_auto_without_cupy_picks_numpy_and_says_why(clean_env):
    without_cupy(clean_env)
    backend = resolve_backend()
    assert (backend.name, backend.device_name, backend.dtype_name) == ("numpy", "cpu", "float32")
    assert backend.note.startswith("auto: numpy (")
    assert "cupy is not installed" in backend.note and "pip install" in backend.note


def test_auto_here_matches_what_cupy_can_do(clean_env):
    """auto takes cupy exactly when cupy can run; otherwise numpy, quoting cupy's refusal."""
    try:
        BACKENDS["cupy"](None, "float32")
        cupy_reason = None
    except BackendError as exc:
        cupy_reason = str(exc)
    backend = resolve_backend()
    if cupy_reason is None:
        assert backend.name == "cupy" and backend.note.startswith("auto: cupy")
    else:
        assert backend.name == "numpy"
        assert backend.note == f"auto: numpy ({cupy_reason})"


def test_auto_with_device_cpu_picks_numpy(clean_env):
    backend = resolve_backend("auto", "cpu")
    assert backend.name == "numpy" and "cpu" in backend.note


# -- refusals, each one line -----------------------------------------------------------

def test_unknown_backend_lists_the_valid_names(clean_env):
    with pytest.raises(BackendError) as info:
        resolve_backend("jax")
    text = one_line(info.value)
    assert "'jax'" in text
    for name in ["auto", *BACKENDS]:
        assert name in text


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cpu_only_libraries_refuse_a_gpu(clean_env, name, device):
    with pytest.raises(BackendError) as info:
        resolve_backend(name, device)
    text = one_line(info.value)
    assert name in text and device in text and "CPU only" in text


def test_missing_cupy_names_the_pip_install(clean_env):
    without_cupy(clean_env)
    with pytest.raises(BackendError) as info:
        resolve_backend("cupy")
    text = one_line(info.value)
    assert "cupy is not installed" in text and "pip install" in text and "xpnet[cuda" in text


def test_torch_cuda_on_a_cpu_only_torch_is_refused(clean_env):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    clean_env.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendError) as info:
        resolve_backend("torch", "cuda")
    text = one_line(info.value)
    assert "cannot use CUDA" in text and "--device cpu" in text


def test_torch_cuda_refused_here_when_this_torch_has_no_gpu(clean_env):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    if torch.cuda.is_available():
        pytest.skip("this torch can use CUDA: the refusal is covered by the simulated test")
    with pytest.raises(BackendError) as info:
        resolve_backend("torch", "cuda")
    assert torch.__version__ in one_line(info.value)


def test_torch_rejects_an_unknown_device(clean_env):
    pytest.importorskip("torch", reason="torch is not installed")
    with pytest.raises(BackendError) as info:
        resolve_backend("torch", "tpu")
    assert "'tpu'" in one_line(info.value)


def test_unknown_dtype_is_refused(clean_env):
    with pytest.raises(BackendError) as info:
        resolve_backend("numpy", "cpu", "float16")
    assert "float32" in one_line(info.value) and "float64" in str(info.value)


def test_backend_errors_are_user_errors():
    assert issubclass(BackendError, XpnetError)


def test_describe_all_has_one_row_per_backend_and_says_why_not():
    rows = describe_all()
    assert [row["backend"] for row in rows] == list(BACKENDS)
    for row in rows:
        assert row["usable"] in ("yes", "no")
        assert (row["why"] == "") == (row["usable"] == "yes")
    assert next(r for r in rows if r["backend"] == "numpy")["usable"] == "yes"


# -- the Backend value -----------------------------------------------------------------

def test_backend_fields_cannot_be_reassigned(reference):
    with pytest.raises(dataclasses.FrozenInstanceError):
        reference.dtype_name = "float32"
    with pytest.raises(dataclasses.FrozenInstanceError):
        reference.xp = np


@pytest.mark.parametrize("name", ["numpy", "array_api_strict", "torch", "cupy"])
def test_backend_kernels_cannot_be_changed_behind_its_back(clean_env, name):
    """A frozen Backend whose kernel table is a plain dict is not immutable: one caller could
    swap the matmul every network on that backend uses."""
    try:
        backend = resolve_backend(name, None, "float64")
    except BackendError as exc:
        pytest.skip(f"{name} unavailable here: {exc}")
    with pytest.raises(TypeError):
        backend.kernels["sgd_update"] = lambda *args: None


def test_with_dtype_returns_a_new_backend(backend):
    single = backend.with_dtype("float32")
    assert (single.dtype_name, backend.dtype_name) == ("float32", "float64")
    assert single.xp is backend.xp and single.device == backend.device and single.name == backend.name
    assert single.dtype == backend.xp.float32
    assert_on(single, single.asarray(np.ones(3)), (3,))
    with pytest.raises(BackendError) as info:
        backend.with_dtype("int8")
    assert "'int8'" in one_line(info.value)


# -- crossing the host/device line -----------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_asarray_always_copies(backend, dtype):
    """Even when no conversion is needed (same dtype, contiguous), the device array is new."""
    b = backend.with_dtype(dtype)
    host = np.arange(6, dtype=dtype).reshape(2, 3)
    device = b.asarray(host)
    assert_on(b, device, (2, 3))
    host[...] = -1.0
    np.testing.assert_array_equal(b.to_numpy(device), np.arange(6, dtype=dtype).reshape(2, 3))


def test_asarray_copies_integer_and_boolean_arrays(backend):
    labels = np.array([3, 1, 2])
    mask = np.array([True, False, True])
    device_labels, device_mask = backend.asarray(labels), backend.asarray(mask)
    assert_on(backend, device_labels, (3,), dtype="int64")
    assert_on(backend, device_mask, (3,), dtype="bool")
    labels[0], mask[0] = 0, False
    assert backend.to_numpy(device_labels).tolist() == [3, 1, 2]
    assert backend.to_numpy(device_mask).tolist() == [True, False, True]


def test_to_numpy_returns_a_copy_the_caller_owns(backend):
    device = backend.asarray(np.arange(4.0))
    host = backend.to_numpy(device)
    assert type(host) is np.ndarray and host.dtype == np.float64 and host.flags.writeable
    host[...] = 99.0
    np.testing.assert_array_equal(backend.to_numpy(device), np.arange(4.0))
    assert backend.to_numpy(device) is not backend.to_numpy(device)


def test_float32_backend_never_upcasts(backend):
    """float64 host data becomes float32; a float32 run stays float32 through arithmetic."""
    b = backend.with_dtype("float32")
    x = b.asarray(np.linspace(-1.0, 1.0, 6).reshape(2, 3))  # float64 on the host
    assert_on(b, x, (2, 3))
    y = b.xp.matmul(x, x.T) * 0.5 + 1.0
    assert_on(b, y, (2, 2))
    assert b.to_numpy(y).dtype == np.float32


def test_asarray_keeps_values_of_non_contiguous_input(backend):
    host = np.arange(12.0).reshape(3, 4).T  # Fortran-ordered view
    np.testing.assert_array_equal(backend.to_numpy(backend.asarray(host)), host)


def test_asarray_keeps_a_0_d_array_0_d(backend):
    y = backend.asarray(np.array(2.5))  # np.ascontiguousarray would make it (1,)
    assert_on(backend, y, ())
    assert float(y) == 2.5


def test_explicit_dtype_wins_over_the_backend_dtype(backend):
    b = backend.with_dtype("float32")
    assert_on(b, b.asarray(np.ones(2), dtype="float64"), (2,), dtype="float64")


def test_str_names_backend_device_and_dtype(backend):
    assert str(backend) == f"{backend.name} ({backend.device_name}, float64)"
