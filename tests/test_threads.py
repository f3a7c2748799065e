"""A step split across CPU threads (train/threads.py) takes the single thread's step."""

from __future__ import annotations

import json
import threading
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import xpnet
from xpnet.train import threads as threads_module
from xpnet.train.threads import ThreadsError, choose_threads
from assertions import assert_one_line_error, run_cli
from toy_runs import images


def trained(layers, threads, optimizer="adam", n=150, batch_size=32, seed=0):
    """A small network trained two epochs in float64 on `threads` threads; its parameters."""
    X, y = images(n, seed=seed)
    net = xpnet.Network.from_layers(layers, (1, 8, 8), 4, xpnet.resolve_backend("numpy", dtype="float64"), seed=0)
    lr = 0.01 if optimizer == "adam" else 0.1
    xpnet.learn(net, (X, y), epochs=2, batch_size=batch_size, lr=lr, optimizer=optimizer, log=None, threads=threads)
    return [np.asarray(p) for p in net.params], net.history


@pytest.mark.parametrize("layers, optimizer", [
    (["conv4x3", "pool2", "dropout0.3", 16], "adam"),  # dropout draws the batch's masks, whoever draws them
    (["conv4x3s2", "avgpool2", 8], "momentum"),
    ([16, 8], "sgd"),  # one thread folds SGD's update into the products; split pieces cannot, and add up the same
])
@pytest.mark.parametrize("threads", [2, 3])  # 3: a batch of 32 and a last one of 22 in uneven pieces
def test_a_step_on_several_threads_is_the_step_on_one(layers, optimizer, threads):
    one, one_history = trained(layers, 1, optimizer)
    split, split_history = trained(layers, threads, optimizer)
    for a, b in zip(one, split):
        np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-13)
    for a, b in zip(one_history, split_history):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-11) and b["accuracy"] == a["accuracy"]


def test_more_threads_than_rows_leave_the_rest_idle(monkeypatch):
    from xpnet.train import steps

    made = []
    monkeypatch.setattr(steps, "ThreadedStep", lambda model, n: made.append(n) or threads_module.ThreadedStep(model, n))
    one, _ = trained(["conv4x3", "pool2", 8], 1, n=10, batch_size=3)  # the last batch has 1 row
    split, _ = trained(["conv4x3", "pool2", 8], 4, n=10, batch_size=3)
    for a, b in zip(one, split):
        np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-13)
    assert made == [3]  # no copy of the network for a thread no row reaches


def test_the_pieces_run_on_their_own_threads_with_one_blas_thread_each(monkeypatch):
    seen = []
    piece = threads_module._piece

    def watched(*args):
        seen.append((threading.get_ident(), max(pool["num_threads"] for pool in threadpool_info()
                                                if pool["user_api"] == "blas")))
        return piece(*args)

    monkeypatch.setattr(threads_module, "_piece", watched)
    trained(["conv4x3", "pool2", 8], 2, n=64)
    assert len({ident for ident, _ in seen}) == 2, seen
    assert {blas for _, blas in seen} == {1}, seen


@pytest.mark.parametrize("layers", [["conv4x3", "pool2", 8], [16, 8]])
def test_one_thread_given_keeps_blas_to_one_and_the_default_leaves_it_its_own(monkeypatch, layers):
    """--threads 1 means one core: two runs side by side, each on BLAS's default thread per core,
    spun against each other at a fifth of their speed. Left out, a dense network's BLAS keeps
    its threads (its products are large enough to share)."""
    from xpnet.train.context import RunContext

    seen = []
    step = RunContext.train_step

    def watched(self, *args):
        seen.append(max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"))
        return step(self, *args)

    monkeypatch.setattr(RunContext, "train_step", watched)
    trained(layers, 1, n=64)
    assert set(seen) == {1}, seen
    if len(layers) == 2 and max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas") > 1:
        seen.clear()
        trained(layers, None, n=64)
        assert min(seen) > 1, seen


@pytest.fixture
def cores(monkeypatch):
    def use(n):
        monkeypatch.setattr(threads_module, "usable_cores", lambda: n)
    return use


def net(layers, backend="numpy"):
    return xpnet.Network.from_layers(layers, (1, 8, 8), 4, xpnet.resolve_backend(backend, dtype="float64"), seed=0)


@pytest.mark.parametrize("cores_here, batch, expected", [(2, 64, 2), (16, 64, 4), (16, 32, 2), (8, 16, 1), (1, 64, 1)])
def test_a_conv_network_on_numpy_takes_the_cores_by_itself(cores, cores_here, batch, expected):
    cores(cores_here)
    threads, note = choose_threads(None, net(["conv4x3", "pool2", 8]), batch, distributed=False)
    assert threads == expected
    assert (note is None) == (expected == 1)
    if note:
        assert f"split across {expected} CPU threads" in note and "--threads 1" in note


def test_dense_networks_and_mpi_ranks_keep_to_one_thread_unless_told(cores):
    cores(8)
    assert choose_threads(None, net([16, 8]), 256, distributed=False) == (1, None)  # BLAS's threads serve it
    assert choose_threads(None, net(["conv4x3", 8]), 256, distributed=True) == (1, None)
    assert choose_threads(3, net([16, 8]), 256, distributed=False) == (
        3, "threads: each batch of 256 is split across 3 CPU threads, as given")


def test_more_threads_than_cores_or_rows_are_taken_with_a_warning(cores):
    cores(2)
    threads, note = choose_threads(100, net(["conv4x3", 8]), 64, distributed=False)
    assert threads == 100
    assert note == ("threads: each batch of 64 is split across 100 CPU threads, as given; warning: this process may "
                    "use 2 core(s), so they take turns: give --threads 2; a batch's 64 rows keep only 64 of them busy")


def test_threads_the_backend_or_the_job_cannot_use_are_refused():
    strict = net(["conv4x3", 8], "array_api_strict")
    assert choose_threads(None, strict, 64, distributed=False) == (1, None)
    with pytest.raises(ThreadsError, match="only the numpy backend splits a batch"):
        choose_threads(2, strict, 64, distributed=False)
    with pytest.raises(ThreadsError, match="start more ranks instead"):
        choose_threads(2, net(["conv4x3", 8]), 64, distributed=True)


def test_learn_refuses_threads_before_choosing_a_rate(monkeypatch):
    """lr="auto" trains copies for minutes; threads it cannot use are refused first."""
    from xpnet.train import loop
    monkeypatch.setattr(loop, "find_learning_rate", lambda *a, **k: pytest.fail("rate trials ran first"))
    X, y = images(64)
    with pytest.raises(ThreadsError, match="only the numpy backend splits a batch"):
        xpnet.learn(net(["conv4x3", 8], "array_api_strict"), (X, y), epochs=1, lr="auto", threads=2, log=None)


def test_the_cli_says_how_many_threads_and_takes_threads_one(capsys, tmp_path, cores):
    cores(2)
    X, y = images(200)
    data = tmp_path / "bars.npz"
    np.savez(data, X=X[:160], y=y[:160], X_test=X[160:], y_test=y[160:])
    args = ["train", "--data", f"npz:{data}", "--layers", "conv4x3,pool2,8", "--epochs", "1", "--batch-size", "32",
            "--backend", "numpy", "--no-progress"]
    code, text, err = run_cli(capsys, *args, "--out", str(tmp_path / "auto"))
    assert code == 0, err
    assert "threads: each batch of 32 is split across 2 CPU threads" in text and text.count("threads:") == 1
    code, text, err = run_cli(capsys, *args, "--threads", "1", "--out", str(tmp_path / "one"))
    assert code == 0, err
    assert "threads: 1, as given (BLAS keeps to one thread too)\n" in text and text.count("threads:") == 1
    code, text, err = run_cli(capsys, *args, "--threads", "2", "--out", str(tmp_path / "two"))
    assert code == 0, err
    assert "threads: each batch of 32 is split across 2 CPU threads, as given\n" in text and text.count("threads:") == 1
    code, _, err = run_cli(capsys, *args, "--threads", "0", "--out", str(tmp_path / "none"))
    assert_one_line_error(code, err, "--threads")
    code, _, err = run_cli(capsys, *args[:-3], "--backend", "array_api_strict", "--threads", "2", "--no-progress",
                           "--out", str(tmp_path / "strict"))
    assert_one_line_error(code, err, "only the numpy backend splits a batch")


def test_a_diverging_run_on_threads_warns_no_more_than_on_one():
    """numpy's warning settings are each thread's own: the loop's silence must hold in every piece,
    so a divergence is the loop's one line, not numpy's RuntimeWarnings from the workers."""
    X, y = images(64)
    for threads in (1, 2):
        net = xpnet.Network.from_layers(["conv4x3", 8], (1, 8, 8), 4, xpnet.resolve_backend("numpy"), seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            with pytest.raises(xpnet.XpnetError, match="diverged|not finite|non-finite"):
                xpnet.learn(net, (X * 1e4, y), epochs=3, batch_size=32, lr=1e8, optimizer="sgd", scale="none",
                            log=None, threads=threads)


def test_an_error_in_another_threads_piece_reaches_the_caller(monkeypatch):
    whole = xpnet.Network.loss_and_grads

    def broken(self, x, targets):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("a piece failed")
        return whole(self, x, targets)

    monkeypatch.setattr(xpnet.Network, "loss_and_grads", broken)
    with pytest.raises(RuntimeError, match="a piece failed"):
        trained(["conv4x3", "pool2", 8], 2)


@pytest.mark.parametrize("threads", [0, -2, True, 2.5, "2"])
def test_learn_refuses_threads_that_are_not_a_count(threads):
    with pytest.raises(xpnet.XpnetError, match="threads must be a positive integer"):
        trained(["conv4x3", 8], threads)


def test_a_run_records_its_thread_count_so_a_resume_splits_alike(capsys, tmp_path, cores):
    cores(2)
    X, y = images(200)
    data = tmp_path / "bars.npz"
    np.savez(data, X=X[:160], y=y[:160], X_test=X[160:], y_test=y[160:])
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--data", f"npz:{data}", "--layers", "conv4x3,pool2,8", "--epochs", "1",
                           "--batch-size", "32", "--backend", "numpy", "--no-progress", "--out", str(out))
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["threads"] == 2
    cores(1)  # resumed on a smaller machine: still two pieces a batch, so the same sums
    code, text, err = run_cli(capsys, "train", "--resume", str(out), "--epochs", "2", "--no-progress")
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["threads"] == 2
    code, text, err = run_cli(capsys, "train", "--resume", str(out), "--epochs", "3", "--no-progress",
                              "--backend", "array_api_strict")
    assert code == 0, err
    assert "split each batch across 2 threads; array_api_strict takes it whole" in text
    assert json.loads((out / "config.json").read_text())["threads"] == 1


@pytest.mark.parametrize("written, cores", [("200000 100000\n", 2), ("150000 100000", 2), ("max 100000", None),
                                            ("", None), ("lots", None)])
def test_a_containers_cpu_quota_caps_the_threads(tmp_path, written, cores):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(written)
    assert threads_module.cpu_quota(cpu_max, tmp_path / "absent") == cores
    assert threads_module.cpu_quota(tmp_path / "absent", tmp_path / "absent") is None


@pytest.mark.parametrize("quota, period, cores", [("300000", "100000", 3), ("50000", "100000", 1),
                                                  ("-1", "100000", None), ("x", "100000", None), ("1", "0", None)])
def test_cgroup_v1s_quota_counts_where_v2_has_none(tmp_path, quota, period, cores):
    (tmp_path / "cpu.cfs_quota_us").write_text(quota + "\n")
    (tmp_path / "cpu.cfs_period_us").write_text(period + "\n")
    assert threads_module.cpu_quota(tmp_path / "no cpu.max", tmp_path) == cores
    (tmp_path / "cpu.max").write_text("200000 100000")
    assert threads_module.cpu_quota(tmp_path / "cpu.max", tmp_path) == 2  # v2's wins where both are there


def test_the_usable_cores_are_the_quotas_where_it_is_smaller(monkeypatch):
    monkeypatch.setattr(threads_module, "cpu_quota", lambda: 1)
    assert threads_module.usable_cores() == 1
