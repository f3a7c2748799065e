"""What a recorded step rests on, held on the CPU: totals added on the device count only the
steps after clean ones, Adam counts its steps on the device (and a checkpoint carries the
count), and a CuPy recording ends its capture and says why when a call is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xpnet.backends.base import GraphUnavailable
from xpnet.model import Network
from xpnet.train.graphs import combine_totals
from xpnet.train.checkpoints import load_for_resume, save_checkpoint
from xpnet.train.loop import learn
from xpnet.model.ops import op
from xpnet.train.optimizers import Adam
from graph_stand_ins import STEP_SIZE_TOL, blobs, host_params, rerunning


def test_combined_totals_count_later_finite_steps_only_after_clean_ones(reference):
    xp = reference.xp
    full = (xp.asarray(6.0), xp.asarray(4), xp.asarray(3))
    tail = (xp.asarray(1.5), xp.asarray(2), xp.asarray(1.0))
    loss, correct, finite = combine_totals(xp, full, tail, first_steps=3)
    assert (float(loss), int(correct), int(finite)) == (7.5, 6, 4)
    broken = (xp.asarray(6.0), xp.asarray(4), xp.asarray(2))  # step 3 of 3 was not finite
    assert int(combine_totals(xp, broken, tail, first_steps=3)[2]) == 2


def test_adam_counting_on_the_device_gives_its_kernel_no_changing_python_number(backend):
    """A recording freezes Python numbers: Adam's bias-corrected step size must reach its
    update kernel as a device scalar that each replay advances, equal to the host's."""
    calls = []

    def watching(xp, p, g, m, v, step_size, beta1, beta2, eps_hat):
        calls.append((step_size, eps_hat))
        return default(xp, p, g, m, v, step_size, beta1, beta2, eps_hat)

    default = op(backend, "adam_update")
    watched = dataclasses.replace(backend, kernels={**backend.kernels, "adam_update": watching})
    net = Network.from_sizes([4, 6, 3], watched, seed=1)
    grads = [watched.xp.ones_like(p) for p in net.params]
    on_host, on_device = Adam(watched, net.params, 0.01), Adam(watched, net.params, 0.01)
    on_device.hold_on_device()
    for _ in range(3):
        on_host.step(net.params, grads)
        host_step, host_eps = calls[-1]
        on_device.step(net.params, grads)
        step, eps = calls[-1]
        assert type(host_step) is float and type(step) is not float  # numpy gives a 0-d result as its scalar
        rel = STEP_SIZE_TOL[backend.dtype_name]["rtol"]  # the library's pow against libm's
        assert float(backend.to_numpy(step)) == pytest.approx(host_step, rel=rel)
        assert float(backend.to_numpy(eps)) == pytest.approx(host_eps, rel=rel)
    assert on_device.counters() == on_host.counters() == {"t": 3}
    resumed = Adam(watched, net.params, 0.01)
    resumed.hold_on_device()
    resumed.load_state({k: backend.to_numpy(a) for k, a in on_device.state().items()}, {"t": 3})
    resumed.step(net.params, grads)
    step = calls[-1][0]
    on_host.step(net.params, grads)
    assert float(backend.to_numpy(step)) == pytest.approx(calls[-1][0], rel=rel)
    assert resumed.counters() == {"t": 4}


def test_adam_under_graphs_resumes_where_it_stopped(reference, tmp_path):
    """The step count lives on the device under graphs; a checkpoint must still carry it."""
    graphing = dataclasses.replace(reference, capture_fn=rerunning)
    X, y = blobs()
    settings = dict(batch_size=32, lr=0.05, optimizer="adam", seed=3, log=None, cuda_graphs=True)

    def save(model, record, state):
        save_checkpoint(model, tmp_path / "m.safetensors", {"epochs": record["epoch"]}, state)

    whole = learn(Network.from_sizes([4, 6, 3], graphing, seed=1), (X, y), epochs=3, **settings)
    learn(Network.from_sizes([4, 6, 3], graphing, seed=1), (X, y), epochs=2, on_epoch=save, **settings)
    net, _, state = load_for_resume(tmp_path / "m.safetensors", graphing)
    assert state.optimizer.t == 2 * 7  # 6 replayed full batches and the short one, per epoch
    resumed = learn(net, (X, y), epochs=3, resume=state, **settings)
    assert state.optimizer.t == 3 * 7
    for a, b in zip(host_params(whole), host_params(resumed)):
        np.testing.assert_array_equal(a, b)


class RecordingStream:
    """What `_record` uses of a CuPy stream, keeping a log of its calls."""

    def __init__(self, end_fails: bool = False):
        self.log: list[str] = []
        self.end_fails = end_fails

    def begin_capture(self):
        self.log.append("begin")

    def end_capture(self):
        self.log.append("end")
        if self.end_fails:
            raise RuntimeError("cudaErrorStreamCaptureInvalidated")
        return "graph"


class OutOfMemoryError(Exception):
    """Named like CuPy's and PyTorch's: a step too big for the device, not a refusal."""


def test_cupy_recording_ends_the_capture_and_says_why_when_a_call_is_refused():
    from xpnet.backends.graphs import _record

    stream = RecordingStream()
    assert _record(stream, lambda: stream.log.append("step")) == "graph"
    assert stream.log == ["begin", "step", "end"]

    def refused():
        raise NotImplementedError("calling cuBLAS API during stream capture is currently unsupported")

    for end_fails in (False, True):  # an invalidated recording fails to end too: still one clear reason
        stream = RecordingStream(end_fails)
        with pytest.raises(GraphUnavailable, match="NotImplementedError: calling cuBLAS API"):
            _record(stream, refused)
        assert stream.log == ["begin", "end"]

    def too_big():
        raise OutOfMemoryError("out of memory allocating 8 GB")

    stream = RecordingStream()
    with pytest.raises(OutOfMemoryError):  # the run's out-of-memory line, not a fallback
        _record(stream, too_big)
    assert stream.log == ["begin", "end"]


def test_cupy_recording_that_cuda_will_not_end_falls_back_too():
    """A step that ran clean can still leave a recording CUDA refuses to end or instantiate
    (invalidated by another stream, say): that too is a reason to train unrecorded."""
    from xpnet.backends.graphs import _record

    stream = RecordingStream(end_fails=True)
    with pytest.raises(GraphUnavailable, match="RuntimeError: cudaErrorStreamCaptureInvalidated"):
        _record(stream, lambda: stream.log.append("step"))
    assert stream.log == ["begin", "step", "end"]
