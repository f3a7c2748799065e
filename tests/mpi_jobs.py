"""Running xpnet as an MPI job in the tests: the toy set's size, the argv of its short run,
mpirun found and launched with a time limit, and a run compared with another."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from xpnet.train.cli import main

LAUNCH_LIMIT_S = 60  # no launch may take longer; a hang fails the test instead of the suite
N_TRAIN = 450  # 7 batches of 64 and a last batch of 2: with 4 ranks, two ranks get nothing in it


def find_mpirun() -> str | None:
    """The mpirun next to this Python (the one pip's mpich installs), else the one on PATH."""
    beside = Path(sys.executable).with_name("mpirun")
    return str(beside) if beside.exists() else shutil.which("mpirun")


def mpi_missing() -> str | None:
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'xpnet[mpi]')"
    if find_mpirun() is None:
        return "no mpirun found beside python or on PATH (pip install 'xpnet[mpi]')"
    return None


def train_args(npz, out, *extra) -> list[str]:
    return ["train", "--data", f"npz:{npz}", "--epochs", "3", "--layers", "16", "--batch-size", "64",
            "--backend", "numpy", "--dtype", "float64", "--no-progress", "--out", str(out), *extra]


def launch(ranks: int, argv: list[str], cwd: Path, script: list[str] | None = None):
    """(exit code, stdout, stderr, seconds) of `mpirun -n ranks python -m xpnet argv`."""
    mpirun = find_mpirun()
    command = [mpirun, *oversubscribe(mpirun), "-n", str(ranks), sys.executable,
               *(script or ["-m", "xpnet"]), *argv]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    return run_bounded(command, cwd, env)


def run_bounded(command, cwd, env):
    start = time.monotonic()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=LAUNCH_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # mpirun and every rank it started
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(command)} hung for {LAUNCH_LIMIT_S} s:\n{out}\n{err}")
    return proc.returncode, out, err, time.monotonic() - start


def oversubscribe(mpirun: str) -> list[str]:
    """Open MPI refuses more ranks than cores unless told; MPICH does not need telling."""
    version = subprocess.run([mpirun, "--version"], capture_output=True, text=True).stdout
    return ["--oversubscribe"] if "Open MPI" in version or "OpenRTE" in version else []


def single_process_run(capsys, npz, out, *extra) -> Path:
    assert main(train_args(npz, out, *extra)) == 0
    capsys.readouterr()
    return out


def assert_same_run(reference: Path, run: Path, rtol: float) -> None:
    """Same tensors (weights and optimizer state) and the same loss every epoch."""
    import json

    want, got = load_file(str(reference / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert sorted(want) == sorted(got)
    for name in want:
        scale = max(float(np.max(np.abs(want[name]))), 1e-300)
        assert float(np.max(np.abs(want[name] - got[name]))) <= rtol * scale, name
    losses = [[r["loss"] for r in json.loads((path / "history.json").read_text())] for path in (reference, run)]
    np.testing.assert_allclose(losses[1], losses[0], rtol=rtol)
