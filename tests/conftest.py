"""The one backend fixture every backend-facing test uses, and the float32 ones that several
test files share.

Each backend xpnet knows is tried; one that cannot run here is skipped with the reason its
probe gave (not installed, no CUDA device), so a skip always says why.
"""

from __future__ import annotations

import signal

import pytest

from xpnet.backends import PLACES, BackendError, resolve_backend

# (backend name, device): every place a backend runs, and a pretend second device for
# array_api_strict, where arrays made off it raise when mixed.
BACKEND_CASES = [*PLACES[:2], ("array_api_strict", "device1"), *PLACES[2:]]


def ctrl_c_as_in_a_terminal() -> None:
    """A child's start (Popen's preexec_fn) for tests that send it SIGINT: a shell starts a
    background job (`pytest &`) with SIGINT ignored, the child would inherit that, and Python
    leaves an ignored SIGINT ignored, so the Ctrl-C under test would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def make_backend(name: str, device: str, dtype: str = "float64"):
    try:
        return resolve_backend(name, device, dtype)
    except BackendError as exc:
        pytest.skip(f"{name} on {device} unavailable here: {exc}")


@pytest.fixture(params=BACKEND_CASES, ids=[f"{n}-{d}" for n, d in BACKEND_CASES])
def backend(request):
    """Every usable backend, in float64 (parity tests switch dtype with `with_dtype`)."""
    name, device = request.param
    return make_backend(name, device)


@pytest.fixture
def reference():
    """numpy float64: the reference every backend is compared against."""
    return resolve_backend("numpy", "cpu", "float64")


@pytest.fixture
def single(backend):
    """Every usable backend, in float32, the default a user gets (test_learning*.py)."""
    return backend.with_dtype("float32")


@pytest.fixture
def numpy32():
    """numpy in float32 (test_own_data*.py)."""
    return resolve_backend("numpy", dtype="float32")


def pytest_terminal_summary(terminalreporter):
    """Skips summarised by reason, most frequent first, instead of a line per test: the same
    reason (no cupy, no GPU) covers hundreds of cases, and a list of them buries the result."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    if reasons:
        terminalreporter.section(f"{sum(reasons.values())} skipped, by reason")
        for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
            terminalreporter.line(f"{count:5d}  {reason}")
