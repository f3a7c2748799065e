"""Data-parallel training on MPI: the same weights as one process, and failures that end the job.

The tests that launch ranks run `mpirun -n N python -m xpnet train --distributed ...` on
this machine (each bounded in time) and compare the run rank 0 wrote with a single-process
run of the same command. They skip, saying why, without mpi4py or an `mpirun`
(pip install 'xpnet[mpi]' brings both). The split of batches into pieces is tested without
MPI, in test_distributed_split.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from xpnet.train.cli import main
from conftest import make_backend
from mpi_jobs import (N_TRAIN, assert_same_run, find_mpirun, launch, mpi_missing, run_bounded,
                      single_process_run, train_args)


needs_mpi = pytest.mark.skipif(mpi_missing() is not None, reason=mpi_missing() or "")


@pytest.fixture
def toy_npz(tmp_path):
    """Four well-separated classes in 12 features, with a held-out split."""
    rng = np.random.default_rng(0)
    centres = 2 * rng.standard_normal((4, 12))
    y = rng.integers(0, 4, N_TRAIN + 100)
    X = (centres[y] + rng.standard_normal((len(y), 12))).astype(np.float32)
    path = tmp_path / "toy.npz"
    np.savez(path, X=X[:N_TRAIN], y=y[:N_TRAIN], X_test=X[N_TRAIN:], y_test=y[N_TRAIN:])
    return path


@pytest.fixture
def mpi_leftovers():
    """MPICH leaves a shared-memory segment behind when a job is aborted: remove the ones this test made."""
    shm = Path("/dev/shm")
    before = set(shm.glob("mpich_shm_*"))
    yield
    for path in set(shm.glob("mpich_shm_*")) - before:
        path.unlink(missing_ok=True)


# -- the command line, without MPI --------------------------------------------------------

def test_mpirun_without_distributed_is_refused(capsys, monkeypatch, toy_npz, tmp_path):
    monkeypatch.setenv("PMI_SIZE", "2")
    code = main(train_args(toy_npz, tmp_path / "run"))
    err = capsys.readouterr().err
    assert code == 1 and "without --distributed" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv("PMI_RANK", "1")  # the other rank fails too, and leaves saying why to rank 0
    code = main(train_args(toy_npz, tmp_path / "run"))
    assert code == 1 and capsys.readouterr().err == "" and not (tmp_path / "run").exists()


def test_distributed_without_mpi4py_says_how_to_install_it(capsys, monkeypatch, toy_npz, tmp_path):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now raises ImportError
    code = main(train_args(toy_npz, tmp_path / "run", "--distributed"))
    err = capsys.readouterr().err
    assert code == 1 and "pip install 'xpnet[mpi]'" in err and len(err.strip().splitlines()) == 1


# -- launched ranks ------------------------------------------------------------------------

@needs_mpi
@pytest.mark.parametrize("ranks, extra, rtol", [
    (1, [], 0.0),  # one rank is the single-process run, bit for bit
    (2, [], 1e-12),  # float64: equal up to the order of the sums
    (4, [], 1e-12),
    (2, ["--dtype", "float32"], 1e-4),
    (2, ["--lr", "auto", "--optimizer", "adam", "--patience", "1"], 1e-12),
    (2, ["--backend", "array_api_strict"], 1e-12),  # gradients staged through host memory
    (3, ["--layers", "dropout0.3,16"], 1e-12),  # each rank keeps its rows of the masks one process draws
], ids=["1-rank", "2-ranks", "4-ranks", "2-ranks-float32", "2-ranks-lr-auto-adam-patience", "2-ranks-staged",
        "3-ranks-dropout"])
def test_ranks_train_the_same_weights_as_one_process(capsys, toy_npz, tmp_path, ranks, extra, rtol):
    reference = single_process_run(capsys, toy_npz, tmp_path / "single", *extra)
    code, out, err, _ = launch(ranks, train_args(toy_npz, tmp_path / "multi", "--distributed", *extra), tmp_path)
    assert code == 0, err
    assert_same_run(reference, tmp_path / "multi", rtol)
    assert out.count("epoch 1/3") == 1 and f"distributed: {ranks} rank" in out  # rank 0 alone logs
    if "array_api_strict" in extra:
        assert "staged through host memory" in out
    else:
        assert "numpy buffers go to MPI directly" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi", "single", "toy.npz"]  # no stray run folders


@needs_mpi
def test_the_mpi_job_says_what_the_single_process_job_says(capsys, toy_npz, tmp_path):
    """One job for both (train_job over a run context): the lines a plain run logs before
    training, the TF32 line among them (the MPI job used to leave it out), come from rank 0
    alone, and the same as a plain run's."""
    args = train_args(toy_npz, tmp_path / "multi", "--distributed", "--tf32", "--epochs", "1")
    code, out, err, _ = launch(2, args, tmp_path)
    assert code == 0, err
    assert main(train_args(toy_npz, tmp_path / "single", "--tf32", "--epochs", "1")) == 0
    single = capsys.readouterr().out.splitlines()
    plain = [line for line in single if line.startswith(("tf32:", "network ", "untrained network"))]
    assert len(plain) == 3 and all(out.count(line) == 1 for line in plain), (plain, out)


@needs_mpi
def test_cupy_ranks_on_the_gpu_train_the_same_weights_as_one_cupy_process(capsys, toy_npz, tmp_path):
    """The GPU path: each rank on a device (shared when there is one GPU), the gradients
    through CUDA-aware MPI or staged through host memory, as the log says; float64 equal up
    to the order of the sums."""
    make_backend("cupy", "cuda")  # skips, saying why, where cupy or a GPU is missing
    extra = ["--backend", "cupy"]
    reference = single_process_run(capsys, toy_npz, tmp_path / "single", *extra)
    code, out, err, _ = launch(2, train_args(toy_npz, tmp_path / "multi", "--distributed", *extra), tmp_path)
    assert code == 0, err
    assert_same_run(reference, tmp_path / "multi", 1e-9)
    assert "cupy buffers go to MPI directly" in out or "cupy buffers are staged through host memory" in out


@needs_mpi
def test_a_distributed_run_resumes_where_it_stopped(capsys, toy_npz, tmp_path):
    """Two epochs on 2 ranks, then resumed on 2 ranks to the third: the 3-epoch single-process run."""
    reference = single_process_run(capsys, toy_npz, tmp_path / "single", "--schedule", "constant")
    argv = train_args(toy_npz, tmp_path / "multi", "--distributed")
    argv[argv.index("--epochs") + 1] = "2"  # then extended to 3: the same run only at a constant rate
    argv += ["--schedule", "constant"]
    code, _, err, _ = launch(2, argv, tmp_path)
    assert code == 0, err
    resume = ["train", "--resume", str(tmp_path / "multi"), "--epochs", "3", "--no-progress", "--distributed"]
    code, out, err, _ = launch(2, resume, tmp_path)
    assert code == 0, err
    assert "resuming" in out and out.count("epoch 3/3") == 1 and "epoch 2/3" not in out
    assert_same_run(reference, tmp_path / "multi", 1e-12)


@needs_mpi
def test_distributed_without_mpirun_is_one_rank_and_fails_like_a_plain_run(tmp_path):
    argv = [sys.executable, "-m", "xpnet", *train_args(tmp_path / "missing.npz", tmp_path / "run", "--distributed")]
    code, out, err, _ = run_bounded(argv, tmp_path, dict(os.environ))
    assert code == 1 and "distributed: 1 rank on 1 machine" in out
    assert err.strip().splitlines() == [f"xpnet: error: npz file {tmp_path / 'missing.npz'} does not exist; "
                                        "give the path of an .npz archive"]


@needs_mpi
def test_ranks_started_differently_stop_before_training_naming_the_difference(toy_npz, tmp_path, mpi_leftovers):
    argv = train_args(toy_npz, tmp_path / "run", "--distributed")
    rank0 = ["-n", "1", sys.executable, "-m", "xpnet", *argv]
    rank1 = ["-n", "1", sys.executable, "-m", "xpnet", *argv, "--batch-size", "32"]
    mpirun = find_mpirun()
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    code, out, err, seconds = run_bounded([mpirun, *rank0, ":", *rank1], tmp_path, env)
    assert code != 0
    assert "--batch-size is 64 on rank 0 but 32 on rank 1" in err, err
    assert "epoch 1/3" not in out


FAULTY_RANK = """
import os, signal, sys, time
from mpi4py import MPI
import xpnet.train.loop
from xpnet.train.data import DataError
from xpnet.train.cli import main

def faulty_epoch(*args, **kwargs):
    fault = os.environ["FAULT"]
    if fault == "raise":
        raise DataError("rank 1 lost its disk")
    if fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(600)  # stuck: alive, but never answers

if MPI.COMM_WORLD.Get_rank() == 1:
    xpnet.train.loop.run_epoch = faulty_epoch
sys.exit(main(sys.argv[1:]))
"""


@needs_mpi
@pytest.mark.parametrize("fault, timeout, says", [
    ("raise", 100, "rank 1 of 2: rank 1 lost its disk"),  # its Abort ends the job, long before the timeout
    ("kill", 100, ""),  # mpirun takes the others down
    ("hang", 2, "waited 2 s for the other ranks (summing gradients)"),  # the deadline notices
])
def test_a_rank_that_fails_ends_the_job_instead_of_hanging_it(toy_npz, tmp_path, monkeypatch, mpi_leftovers,
                                                             fault, timeout, says):
    script = tmp_path / "faulty_rank.py"
    script.write_text(FAULTY_RANK)
    monkeypatch.setenv("FAULT", fault)
    argv = train_args(toy_npz, tmp_path / "run", "--distributed", "--mpi-timeout", str(timeout))
    code, out, err, seconds = launch(2, argv, tmp_path, script=[str(script)])
    assert code != 0
    assert says in err, err
    assert seconds < 30, f"the job took {seconds:.0f} s to end"
    assert "epoch 1/3" not in out


def test_inputs_folder_is_removed_when_writing_fails(tmp_path, monkeypatch):
    """Non-finite training inputs stop the job before any rank maps them; the half-written
    folder must not stay behind in $TMPDIR."""
    from xpnet.train.data import DataError, DataSet
    from xpnet.train.distributed import write_inputs_file

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    X = np.zeros((5, 3), np.float32)
    X[3, 1] = np.nan
    with pytest.raises(DataError, match="finite"):
        write_inputs_file(DataSet(X, np.zeros(5, np.int64), None, None, classes=("a",), image_shape=None),
                          "float32")
    assert list(tmp_path.iterdir()) == []


def test_orphaned_inputs_of_killed_jobs_are_removed(tmp_path):
    from xpnet.train.distributed import INPUTS_PREFIX, remove_orphaned_inputs

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process id that no longer runs
    orphan = tmp_path / f"{INPUTS_PREFIX}{gone.pid}-abc123"
    recent = tmp_path / f"{INPUTS_PREFIX}{gone.pid}-ghi789"  # the same dead id, but written just now
    live = tmp_path / f"{INPUTS_PREFIX}{os.getpid()}-def456"
    unrelated = tmp_path / "xpnet-mpi-notapid"
    two_hours_ago = time.time() - 7200
    for folder in (orphan, recent, live, unrelated):
        folder.mkdir()
        (folder / "X_train.npy").write_bytes(b"x")
        if folder is not recent:
            os.utime(folder, (two_hours_ago, two_hours_ago))
    assert remove_orphaned_inputs(tmp_path) == [orphan]
    assert not orphan.exists() and recent.exists() and live.exists() and unrelated.exists()


def test_mpi_timeout_without_distributed_is_refused_in_one_line(capsys, toy_npz, tmp_path):
    code = main(["train", "--data", f"npz:{toy_npz}", "--mpi-timeout", "10", "--no-progress",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "--mpi-timeout" in err and "--distributed" in err, err


@needs_mpi
def test_ranks_shift_each_picture_as_one_process_does(capsys, tmp_path):
    """--shift draws one move per sample from the generator every rank holds: each rank moves
    its rows of a batch as the single process moves them."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, N_TRAIN)
    X = (0.3 * rng.random((N_TRAIN, 4, 4)) + (y[:, None, None] * np.eye(4)[1])).reshape(N_TRAIN, 16)
    data = tmp_path / "squares.npz"
    np.savez(data, X=X.astype(np.float32), y=y)
    reference = single_process_run(capsys, data, tmp_path / "single", "--shift", "1")
    code, _, err, _ = launch(2, train_args(data, tmp_path / "multi", "--distributed", "--shift", "1"), tmp_path)
    assert code == 0, err
    assert_same_run(reference, tmp_path / "multi", 1e-12)
    unshifted = single_process_run(capsys, data, tmp_path / "plain")
    assert load_file(str(unshifted / "model.safetensors")).keys() == load_file(str(reference / "model.safetensors")).keys()
    with pytest.raises(AssertionError):  # the shift did move them: the test could tell
        assert_same_run(reference, unshifted, 1e-12)
