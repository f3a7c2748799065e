"""The bench scripts refuse bad options in one line and a non-zero exit, never a traceback.

Each case fails before any benchmarking starts, so the whole module takes seconds. The
step benches get a tiny network and --quick first, so that a script that wrongly accepted
the bad option would still finish (and fail the test) quickly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--quick", "--network", "relu-ce", "--layers", "8,4,2", "--batch-sizes", "4", "--threads", "1"]

CASES = [  # (script, arguments, what the one line must name)
    ("train_step", [*TINY, "--backends", "numpy", "--batch-sizes", "-4"], ["--batch-sizes", "-4"]),
    ("train_step", [*TINY, "--backends", "numpy", "--batch-sizes", "abc"], ["--batch-sizes", "abc"]),
    ("train_step", [*TINY, "--backends", "numpy", "--batch-sizes", "0"], ["--batch-sizes", "0"]),
    ("train_step", [*TINY, "--backends", "numpy", "--layers", "784,abc,10"], ["--layers", "784,abc,10"]),
    ("train_step", [*TINY, "--backends", "numpy", "--layers", "784"], ["--layers", "784"]),
    ("train_step", [*TINY, "--backends", "numpy", "--layers", "784,0,10"], ["--layers", "784,0,10"]),
    ("train_step", [*TINY, "--backends", "numpy", "--layers", ""], ["--layers"]),
    ("train_step", [*TINY, "--backends", "numpy", "--threads", "0"], ["--threads", "0"]),
    ("train_step", [*TINY, "--backends", "numpy", "--repeats", "0"], ["--repeats", "0"]),
    ("train_step", [*TINY, "--backends", "numpy", "--noisy-above", "-1"], ["--noisy-above", "-1"]),
    ("train_step", [*TINY, "--backends", "numpy", "--weight-decay", "-1"], ["--weight-decay", "-1"]),
    ("train_step", [*TINY, "--backends", "numpy", "--momentum", "x"], ["--momentum", "x"]),
    ("train_step", [*TINY, "--backends", "numpy", "--wait-idle", "-5"], ["--wait-idle", "-5"]),
    ("profile_step", [*TINY, "--batch-sizes", "x"], ["--batch-sizes", "x"]),
    ("profile_step", [*TINY, "--batch-sizes", "0"], ["--batch-sizes", "0"]),
    ("profile_step", [*TINY, "--layers", "784"], ["--layers", "784"]),
    ("profile_step", [*TINY, "--threads", "0"], ["--threads", "0"]),
    ("op_profile", ["--layers", "8,4,2", "--batch-sizes", "4", "--steps", "0"], ["--steps", "0"]),
    ("op_profile", ["--layers", "8,4,2", "--batch-sizes", "4", "--backends", "nump"], ["nump"]),
    ("memory", ["--layers", "8,4,2", "--batch-sizes", "4", "--steps", "0"], ["--steps", "0"]),
    ("memory", ["--layers", "8,4,2", "--steps", "10", "--batch-sizes", "-1"], ["--batch-sizes", "-1"]),
    ("pipeline", ["--backend", "nump"], ["nump"]),
    ("pipeline", ["--samples", "0"], ["--samples", "0"]),
    ("pipeline", ["--samples", "1000", "--repeats", "0"], ["--repeats", "0"]),
    ("subnormals", ["--epochs", "0"], ["--epochs", "0"]),
    ("subnormals", ["--samples", "10"], ["--samples", "10"]),
    ("scaling", ["--ranks", "1,x"], ["--ranks", "1,x"]),
    ("cnn_step", ["--seconds", "0"], ["--seconds", "above 0"]),
    ("cnn_step", ["--seconds", "-1"], ["--seconds", "-1"]),
    ("cnn_step", ["--noisy-above", "nan"], ["--noisy-above", "nan"]),
    ("cnn_step", ["--device", "gpu"], ["--device", "gpu"]),
    ("scaling", ["--samples", "100", "--epochs", "1", "--repeats", "1", "--ranks", "0"], ["--ranks", "0"]),
]


@pytest.mark.parametrize("script, args, named", CASES, ids=[f"{s} {' '.join(a[-2:])}" for s, a, _ in CASES])
def test_bad_option_is_one_line(script, args, named):
    done = subprocess.run([sys.executable, f"bench/{script}.py", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, f"accepted: {done.stdout[-500:]}"
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{script}.py: error:" in lines[0]
    for word in named:
        assert word in lines[0], lines[0]


def test_the_step_bench_gives_xpnet_and_torch_the_same_momentum_and_weight_decay(monkeypatch):
    """--momentum and --weight-decay reach xpnet's SGD, folded or not, and PyTorch's, so the
    ratio compares one step: the letters job's momentum and decay (of the weights, as xpnet's),
    not plain SGD."""
    from bench.contestants import LR, numpy_backend, sgd_network, torch_eager_contestant
    from bench.train_step import parse_args

    config = parse_args([*TINY, "--backends", "numpy", "--momentum", "0.9", "--weight-decay", "0.0001"])
    spec = config.spec("relu-ce", 4)
    assert spec.describe().endswith("momentum 0.9, weight decay 0.0001")
    for fold in (True, False):
        _, opt, _ = sgd_network(numpy_backend("float32", 1), spec, fold)
        assert (opt.momentum, opt.weight_decay, opt.folds) == (0.9, 0.0001, fold)
    torch = pytest.importorskip("torch", reason="torch is not installed (the bench extra)")
    made = []
    real = torch.optim.SGD
    monkeypatch.setattr(torch.optim, "SGD", lambda groups, **kw: made.append((groups, kw)) or real(groups, **kw))
    torch_eager_contestant(spec, "cpu")
    [(groups, kw)] = made
    assert kw == dict(lr=LR, momentum=0.9)
    decayed = {p.ndim for g in groups if g["weight_decay"] == 0.0001 for p in g["params"]}
    kept = {p.ndim for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert (decayed, kept) == ({2}, {1}), "xpnet decays the weights and never the biases; so must PyTorch here"


def test_the_step_bench_times_each_contestant_in_a_process_of_its_own():
    """In one process the threads of the library that ran last spin on and slow the next one's,
    so xpnet, the products ceiling and PyTorch each take their turns in a process of their own,
    and xpnet's and the ceiling's processes on numpy never load torch."""
    from bench.timing import Timing, measure
    from bench.train_step import parse_args, recipes, start_workers

    config = parse_args([*TINY, "--backends", "numpy", "--unfolded"])
    from xpnet.backends import resolve_backend

    wanted = recipes("numpy", resolve_backend("numpy", "cpu", "float32"), config.spec("relu-ce", 4), config)
    timing = Timing.quick(repeats=2)
    workers, notes = start_workers(wanted, timing)
    try:
        measure(workers, timing)
    finally:
        for w in workers:
            w.close()
    by_name = {w.name: w for w in workers}
    assert {"products", "xpnet", "xpnet unfolded"} <= set(by_name)
    assert len({w.pid for w in workers} | {os.getpid()}) == len(workers) + 1
    for name in ("products", "xpnet", "xpnet unfolded"):
        assert by_name[name].libraries == ("numpy",), (name, by_name[name].libraries)
    assert all(len(w.times) == 2 and min(w.times) > 0 for w in workers)
    if "torch eager" in by_name:
        assert "torch" in by_name["torch eager"].libraries
    else:
        assert any("no torch eager" in note for note in notes), notes


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finding the workers reads Linux's /proc")
def test_a_ctrl_c_ends_the_step_bench_in_one_line_and_leaves_no_worker_behind():
    """What was measured is printed already; the workers ignore the Ctrl-C, the bench says it
    was interrupted, and the workers go with it."""
    import signal
    import time

    marker = f"XPNET_BENCH_TEST_{os.getpid()}"
    env = {**os.environ, marker: "1"}
    bench = subprocess.Popen([sys.executable, "bench/train_step.py", *TINY, "--backends", "numpy", "--repeats", "100000"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True,  # its own process group, to signal as a terminal would
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # not ignored, as under `&`
    deadline = time.monotonic() + 60
    while len(_processes_with(marker)) < 3 and time.monotonic() < deadline:  # the bench and two workers at least
        time.sleep(0.2)
    time.sleep(1)
    assert len(_processes_with(marker)) >= 3, "the workers never started"
    os.killpg(bench.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: to the bench and its workers alike
    _, err = bench.communicate(timeout=60)
    assert bench.returncode == 130
    assert err.strip() == "train_step.py: interrupted", err[-3000:]
    time.sleep(0.5)
    assert _processes_with(marker) == []


def _processes_with(marker: str) -> list[int]:
    """The processes whose environment holds `marker` (the bench's, inherited by its workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f"{marker}=1".encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("fault", ["stopped", "killed"])
def test_a_stuck_or_dead_worker_ends_the_bench_with_its_reason_not_a_hang(monkeypatch, fault):
    import signal

    from bench import workers
    from bench.timing import Timing
    from bench.train_step import parse_args, recipes
    from xpnet.backends import resolve_backend

    config = parse_args([*TINY, "--backends", "numpy"])
    recipe = recipes("numpy", resolve_backend("numpy", "cpu", "float32"), config.spec("relu-ce", 4), config)[1]
    worker = workers.start(recipe, Timing.quick(repeats=1))
    assert worker.take_turn() > 0
    monkeypatch.setattr(workers, "TURN_LIMIT_S", 3.0)
    os.kill(worker.pid, signal.SIGSTOP if fault == "stopped" else signal.SIGKILL)
    if fault == "killed":
        worker._process.join(timeout=10)
    with pytest.raises(workers.WorkerFailed, match="no answer in 3 s" if fault == "stopped" else "xpnet process"):
        worker.take_turn()
    assert not worker._process.is_alive()


def test_pipeline_noisy_verdict_is_no_pass(capsys):
    """A NOISY run must not also read as a clean pass of the 5% target."""
    from argparse import Namespace

    from bench.contestants import Contestant
    from bench.pipeline import report

    bare = Contestant("bare steps", None, times=[1.0] * 8)
    epoch = Contestant("epoch", None, times=[1.0, 0.6, 1.4, 1.0, 0.7, 1.3, 1.0, 1.0])  # median ratio 1.0
    report(epoch, Contestant("gathered steps", None, times=[1.0] * 8), bare, Namespace(repeats=8, noisy_above=0.10))
    out = capsys.readouterr().out
    assert "NOISY" in out
    assert "within the 5% target\n" not in out
    assert "too noisy to tell" in out


def test_op_profile_accounts_for_every_op_the_step_runs():
    """Each op of the step (through the op table), then what no op covers; the shares are of
    the whole step, so they add up to about 100%."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "op_profile.py"), "--backends", "numpy",
                           "--network", "relu-ce", "--layers", "8,4,2", "--batch-sizes", "4", "--steps", "5",
                           "--threads", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    shown = {line.split()[0] for line in lines if line.startswith("  ")}
    assert {"matmul", "bias_act.relu", "act_grad.relu", "loss.cross_entropy", "rest"} <= shown, done.stdout
    shares = [float(line.split()[-1].rstrip("%")) for line in lines if line.startswith("  ")]
    assert 99 < sum(shares) < 101


def test_the_cnn_bench_times_the_network_the_cnn_preset_trains():
    """bench/cnn_step.py writes the preset's layers out (it must not import xpnet before its thread
    count is set), so a preset that changes must take the bench with it, PyTorch's copy too."""
    from bench.cnn_step import LAYERS, LR, WEIGHT_DECAY
    from xpnet.train.config import PRESETS

    assert LAYERS == PRESETS["cnn"]["hidden"] and LR == PRESETS["cnn"]["lr"]
    assert WEIGHT_DECAY == PRESETS["cnn"]["weight_decay"]


def test_the_cnn_benchs_noise_is_none_from_one_round_not_zero():
    from bench.cnn_step import paired

    speeds = {"xpnet": [{"wall": 2.0}], "torch": [{"wall": 1.0}]}
    assert paired(speeds, "wall") == (2.0, None)
    speeds = {"xpnet": [{"wall": x} for x in (2.0, 2.2, 1.8, 2.0)], "torch": [{"wall": 1.0}] * 4}
    median, noise = paired(speeds, "wall")
    assert median == 2.0 and noise > 0


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_the_cnn_bench_times_both_contestants_on_the_device_or_ends_in_one_line(device):
    """On a GPU each contestant's worker steps cupy's (or torch's CUDA) network and prints its
    speed; where a device's backend cannot run, the bench refuses in one line before any worker
    starts. Where torch is missing, --device cpu says so in one line too."""
    from conftest import make_backend

    script = [sys.executable, "bench/cnn_step.py", "--batch-sizes", "4", "--threads", "1", "--seconds", "0.05"]
    try:
        from bench.cnn_step import BACKENDS, check_device

        check_device(device)
    except Exception as exc:  # an XpnetError saying what is missing
        done = subprocess.run([*script, "--device", device, "--rounds", "1"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode != 0 and done.stderr.strip() == f"cnn_step.py: error: {exc}", done.stderr
        for name in (BACKENDS[device], "torch"):
            make_backend(name, device)  # skips with the reason
        pytest.fail(f"check_device refused a usable {device}: {exc}")
    for name in ("xpnet", "torch"):
        done = subprocess.run([*script, "--device", device, "--worker", name], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        speed = json.loads(done.stdout.strip().splitlines()[-1])
        assert speed["wall"] > 0 and speed["cpu"] > 0


def test_the_cnn_benchs_pytorch_network_has_xpnets_weights():
    """PyTorch's contestant is built from the same words: the same weights in the same shapes."""
    pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[torch]'")
    from bench.cnn_step import CLASSES, LAYERS, SIDE, torch_model
    from xpnet import resolve_backend
    from xpnet.model import Network

    net = Network.from_layers(LAYERS, (1, SIDE, SIDE), CLASSES, resolve_backend("numpy"), seed=0)
    assert [tuple(p.shape) for p in torch_model().parameters()] == [tuple(p.shape) for p in net.params]


def test_the_benches_choose_among_the_places_every_backend_runs():
    """bench/options.py keeps its own table (it must not import xpnet before the thread count is
    set); it must offer the same (backend, device) places as the registry's, no more, no fewer."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from options import BACKEND_CHOICES
    finally:
        sys.path.remove(str(ROOT / "bench"))
    from xpnet.backends import PLACES

    assert sorted(BACKEND_CHOICES.values()) == sorted(PLACES)


@pytest.mark.parametrize("script, args, says", [
    ("subnormals", ["--samples", "6400", "--epochs", "1", "--repeats", "1"], "subnormals flushed:"),
    ("pipeline", ["--samples", "1000", "--repeats", "1"], "epoch / bare steps ="),
])
def test_the_benches_that_build_the_default_network_run_to_their_figures(tmp_path, script, args, says):
    """They build the default network from a config of their own, so a default that is None until
    the data settles it (the layers, the batch, the rate) must not break them: both once stopped
    there, at "learning rate ... got None" and "'NoneType' object is not iterable"."""
    env = {**os.environ, "XPNET_CACHE": str(tmp_path), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, f"bench/{script}.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-1000:]
    assert says in done.stdout, done.stdout[-1000:]
