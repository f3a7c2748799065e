"""Graph-replayed steps (train/graphs.py) train exactly as ordinary steps do.

On the CPU no backend records CUDA graphs, so these tests give the backends a stand-in
that runs the step and then "replays" it by running it again: everything but the
recording itself (the fixed index buffer, the gather inside the step, the totals added on
the device, the shorter last batch, the fallback) is held to the ordinary loop on every
backend. On a GPU, the same comparison runs with real recordings. What a recording rests
on (totals, Adam's count, CuPy's capture): test_graphs_recording.py.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from xpnet.backends.base import GraphUnavailable
from xpnet.model import Network
from xpnet.train.graphs import GraphedSteps, graph_blocker
from xpnet.train.context import RunContext
from xpnet.train.device_data import DeviceData
from xpnet.train.loop import learn
from xpnet.train.watch import DivergenceError
from xpnet.model.ops import op
from xpnet.train.optimizers import make_optimizer
from xpnet.train.steps import EagerSteps
from conftest import make_backend
from graph_stand_ins import STEP_SIZE_TOL, blobs, counting_runs, host_params, rerunning


def refusing(fn):
    """A library that runs the step but refuses to record it (as CuPy does for cuBLAS)."""
    fn()
    raise GraphUnavailable("NotImplementedError: cuBLAS during capture")


def trained(backend, graphs: bool, n=203, batch_size: int | None = 32, optimizer="momentum", lines=None,
            activation="tanh", loss="cross_entropy"):
    X, y = blobs(n)
    net = Network.from_sizes([4, 6, 3], backend, activation=activation, loss=loss, seed=1)
    log = None if lines is None else lines.append
    learn(net, (X, y), epochs=3, batch_size=batch_size, lr=0.2, optimizer=optimizer, seed=3, log=log,
          cuda_graphs=graphs)
    return net


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("n", [203, 192], ids=["short-last-batch", "full-batches-only"])
def test_replayed_steps_train_exactly_as_ordinary_steps(backend, n, optimizer):
    runs = []
    graphing = dataclasses.replace(backend, capture_fn=counting_runs(runs))
    lines: list[str] = []
    ours = trained(graphing, True, n, lines=lines, optimizer=optimizer)
    plain = trained(backend, False, n, optimizer=optimizer)
    assert any(line.startswith("CUDA graphs: on") for line in lines), lines
    assert len(runs) == 3 * (n // 32)  # every full batch of the 3 epochs, and only those
    # The same batches and steps, bit for bit. Adam's step size, counted on the device under
    # graphs, comes from the library's pow, which may differ from libm's in its last bit.
    tol = STEP_SIZE_TOL[backend.dtype_name] if optimizer == "adam" else dict(rtol=0, atol=0)
    for a, b in zip(host_params(ours), host_params(plain)):
        np.testing.assert_allclose(a, b, **tol)
    for mine, theirs in zip(ours.history, plain.history):
        assert mine["accuracy"] == theirs["accuracy"]
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=max(tol["rtol"], 1e-12))
    assert 0.4 < ours.history[-1]["accuracy"] < 1.0


@pytest.mark.parametrize("asked, on", [(None, True), (False, False), (True, True)],
                         ids=["default", "switched-off", "asked-for"])
def test_a_backend_that_records_graphs_uses_them_by_default(reference, asked, on):
    """On a GPU (here the stand-in) graphs are the default: the H200 trained the letters job
    to the same figures with them, about 8 times faster; --no-cuda-graphs switches them off."""
    runs = []
    X, y = blobs()
    net = Network.from_sizes([4, 6, 3], dataclasses.replace(reference, capture_fn=counting_runs(runs)), seed=1)
    lines: list[str] = []
    learn(net, (X, y), epochs=2, batch_size=32, lr=0.2, log=lines.append, **({} if asked is None else
                                                                            {"cuda_graphs": asked}))
    assert bool(runs) == on and any(line.startswith("CUDA graphs: on") for line in lines) == on


@pytest.mark.parametrize("asked, said", [(None, False), (True, True)], ids=["default", "asked-for"])
def test_a_backend_without_graphs_says_so_only_when_they_were_asked_for(reference, asked, said):
    lines: list[str] = []
    X, y = blobs()
    learn(Network.from_sizes([4, 6, 3], reference, seed=1), (X, y), epochs=1, batch_size=32, lr=0.2,
          log=lines.append, cuda_graphs=asked)
    assert any(line.startswith("CUDA graphs: off (numpy") for line in lines) == said, lines


def test_a_batch_of_the_whole_set_replays_too(reference):
    """Full-batch gradient descent: no shuffled order at all, one replay an epoch."""
    graphing = dataclasses.replace(reference, capture_fn=rerunning)
    ours, plain = trained(graphing, True, batch_size=None), trained(reference, False, batch_size=None)
    for a, b in zip(host_params(ours), host_params(plain)):
        np.testing.assert_array_equal(a, b)
    assert [r["loss"] for r in ours.history] == pytest.approx([r["loss"] for r in plain.history], rel=1e-12)


def on_another_device():
    """array_api_strict on its pretend second device, replaying with the stand-in: an array
    made anywhere without the backend's device lands on its CPU device, and mixing the two
    raises, as mixing host and GPU arrays would."""
    return dataclasses.replace(make_backend("array_api_strict", "device1"), capture_fn=rerunning)


@pytest.mark.parametrize("activation, loss", [("tanh", "cross_entropy"), ("relu", "cross_entropy"),
                                              ("sigmoid", "quadratic")])
def test_every_array_the_loop_makes_lives_on_the_models_device(activation, loss):
    strict = on_another_device()
    for graphs in (True, False):
        for n, batch_size in ((203, 32), (192, None)):
            net = trained(strict, graphs, n, batch_size, activation=activation, loss=loss)
            assert all(p.device == strict.device for p in net.params)
            assert net.history[-1]["accuracy"] > 0.4


def test_regression_arrays_live_on_the_models_device_too():
    strict = on_another_device()
    X = np.random.default_rng(0).standard_normal((203, 4))
    for graphs in (True, False):
        net = Network.from_sizes([4, 6, 1], strict, activation="tanh", loss="quadratic", seed=1)
        learn(net, (X, X[:, 0] * 0.5), epochs=3, batch_size=32, lr=0.1, log=None, cuda_graphs=graphs)
        assert net.history[-1]["loss"] < net.history[0]["loss"]


def test_float32_totals_are_summed_in_float64(reference):
    graphing = dataclasses.replace(reference.with_dtype("float32"), capture_fn=rerunning)
    ours, plain = trained(graphing, True), trained(reference.with_dtype("float32"), False)
    for mine, theirs in zip(ours.history, plain.history):
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-6)


def test_a_refused_recording_falls_back_to_ordinary_steps_and_says_so(reference):
    lines: list[str] = []
    ours = trained(dataclasses.replace(reference, capture_fn=refusing), True, lines=lines)
    plain = trained(reference, False)
    for a, b in zip(host_params(ours), host_params(plain)):
        np.testing.assert_array_equal(a, b)
    said = [line for line in lines if "recording failed" in line]
    assert len(said) == 1 and "cuBLAS during capture" in said[0], lines


def exploding(backend, graphs: bool) -> str:
    """h = w + b fitted to 0 from x = 1 with lr 5: the error grows 9-fold a step until the
    loss overflows float32, in a full batch or in the shorter last one."""
    net = Network.from_sizes([1, 1], backend, activation="identity", loss="quadratic", seed=0)
    X, y = np.ones((30, 1)), np.zeros(30)
    with pytest.raises(DivergenceError) as caught:
        learn(net, (X, y), epochs=200, batch_size=8, lr=5.0, optimizer="sgd", log=None, cuda_graphs=graphs)
    return str(caught.value)


def test_a_diverging_run_names_the_same_step_with_or_without_graphs(reference):
    float32 = reference.with_dtype("float32")
    message = exploding(dataclasses.replace(float32, capture_fn=rerunning), True)
    assert message == exploding(float32, False)
    assert re.search(r"at epoch \d+, step \d+ \(step \d of the epoch\)", message), message


def test_graphs_are_off_with_the_reason_where_they_cannot_run(reference):
    X, y = blobs()
    net = Network.from_sizes([4, 6, 3], reference, seed=1)
    data = DeviceData.from_host(net, X, y)
    assert "numpy on cpu has no CUDA graphs" in graph_blocker(net, data, 32)
    graphing = dataclasses.replace(reference, capture_fn=rerunning)
    net = Network.from_sizes([4, 6, 3], graphing, seed=1)
    data = DeviceData.from_host(net, X, y)
    assert graph_blocker(net, data, 32) is None
    assert graph_blocker(net, data, 32, RunContext()) is None

    class ManyRanks(RunContext):
        graphs_blocker = "a distributed step sums gradients through MPI between its kernels"

    assert "MPI" in graph_blocker(net, data, 32, ManyRanks())
    assert "no batch is full" in graph_blocker(net, data, 500)
    streamed = dataclasses.replace(data, streamed=True)
    assert "does not fit on the device" in graph_blocker(net, streamed, 32)
    dropping = Network.from_layers(["dropout0.5", 6], (4,), 3, graphing, seed=1)
    assert "dropout" in graph_blocker(dropping, DeviceData.from_host(dropping, X, y), 32)
    convolving = Network.from_layers(["conv2x2", 6], (1, 2, 2), 3, graphing, seed=1)
    assert graph_blocker(convolving, DeviceData.from_host(convolving, X, y), 32) is None
    lines: list[str] = []
    trained(reference, True, lines=lines)
    assert "CUDA graphs: off (numpy on cpu has no CUDA graphs)" in lines


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_a_changed_learning_rate_reaches_the_recording_without_a_new_one(backend, optimizer):
    """The rate lives in a device scalar each replay reads, so a schedule or lr=auto's choice
    changing it costs no new recording, and the steps take the new rate, as ordinary ones do."""
    recordings = []

    def counting(fn):
        recordings.append(fn)
        return rerunning(fn)

    X, y = blobs()
    runs = []
    for each in (dataclasses.replace(backend, capture_fn=counting), backend):
        net = Network.from_sizes([4, 6, 3], each, seed=1)
        opt = make_optimizer(optimizer, each, net.params, 0.1)
        data = DeviceData.from_host(net, X, y)
        steps = GraphedSteps(net, opt, data, 32) if each.capture_fn else EagerSteps(net, opt, data, 32,
                                                                                       RunContext())
        order = each.asarray(np.random.default_rng(0).permutation(203))
        for lr in (0.1, 0.1, 0.02, 0.3):
            opt.lr = lr
            steps.run_epoch(order)
        runs.append(host_params(net))
    assert len(recordings) == 1
    tol = STEP_SIZE_TOL[backend.dtype_name] if optimizer == "adam" else dict(rtol=0, atol=0)
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, **tol)


GPU_TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-4, atol=1e-5)}


def recording_backend(backend):
    if backend.capture_fn is None:
        pytest.skip(f"{backend} records no CUDA graphs (the CPU stand-in tests above hold its logic)")
    return backend


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_recorded_graphs_train_as_ordinary_steps_on_a_gpu(backend, optimizer, dtype):
    backend = recording_backend(backend).with_dtype(dtype)
    lines: list[str] = []
    ours, plain = trained(backend, True, optimizer=optimizer, lines=lines), trained(backend, False, optimizer=optimizer)
    assert any(line.startswith("CUDA graphs: on") for line in lines), lines
    assert not any("recording failed" in line for line in lines), lines
    for a, b in zip(host_params(ours), host_params(plain)):
        np.testing.assert_allclose(a, b, **GPU_TOL[dtype])
    for mine, theirs in zip(ours.history, plain.history):
        assert mine["accuracy"] == pytest.approx(theirs["accuracy"], abs=2 / 203)
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=GPU_TOL[dtype]["rtol"])


@pytest.mark.gpu
def test_a_step_the_gpu_cannot_record_falls_back_and_trains_the_same(backend):
    """A step that reads the device mid-way runs, but no library records it: the run must
    say so once, carry on with ordinary steps on its usual stream, and lose nothing."""
    backend = recording_backend(backend)
    product = op(backend, "matmul")

    def reading_product(xp, a, b):
        float(xp.sum(a))  # a read back to the host: fine in a run, refused while recording
        return product(xp, a, b)

    reading = dataclasses.replace(backend, kernels={**backend.kernels, "matmul": reading_product})
    lines: list[str] = []
    ours, plain = trained(reading, True, lines=lines), trained(backend, False)
    assert sum("recording failed" in line for line in lines) == 1, lines
    for a, b in zip(host_params(ours), host_params(plain)):
        np.testing.assert_allclose(a, b, **GPU_TOL["float64"])
    if backend.name == "torch":
        import torch

        assert torch.cuda.current_stream() == torch.cuda.default_stream()
    else:
        import cupy

        assert cupy.cuda.get_current_stream().ptr == cupy.cuda.Stream.null.ptr
