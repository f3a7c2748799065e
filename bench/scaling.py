"""Data-parallel scaling: training throughput with 1, 2, ... MPI ranks, side by side in one run.

Trains the default network (784-256-128-26, ReLU, cross-entropy, momentum) on a synthetic
set of letters' shape with `mpirun -n R xpnet train --distributed` for each rank count,
interleaved (1, 2, 1, 2, ...) so every count sees the same load on a shared machine, and
reads the samples/s xpnet itself logs per epoch (rank 0's clock: the whole job's pace).
Each rank gets `--threads` BLAS threads (default 1: R ranks use R cores), and a
single-process run with R x threads (no MPI) is timed beside them, so the table says
whether MPI beats plain threading on this machine. Speeds are each row's best epoch over
the repeats; the spread (max - min) / median of the repeats' best epochs says how steady
the machine was.

    python bench/scaling.py                              # 1 and 2 ranks, numpy, batch 64 and 256
    python bench/scaling.py --ranks 1,2,4 --samples 30000
    python bench/scaling.py --backend cupy --ranks 1,2   # on a GPU machine: ranks share the GPUs
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere

from bench.options import (  # noqa: E402  (needs the path above)
    OneLineParser, non_negative_float, positive_int, positive_ints, run_main,
)
from bench.timing import wait_for_idle  # noqa: E402


def parse_args(argv=None):
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=positive_ints, default="1,2",
                   help="rank counts to compare, comma-separated (default 1,2)")
    p.add_argument("--batch-sizes", type=positive_ints, default="64,256",
                   help="global batch sizes, comma-separated (default 64,256)")
    p.add_argument("--samples", type=positive_int, default=20000, help="training samples (default 20000)")
    p.add_argument("--epochs", type=positive_int, default=2, help="epochs per run; the best one counts (default 2)")
    p.add_argument("--repeats", type=positive_int, default=3, help="runs of each row, interleaved (default 3)")
    p.add_argument("--threads", type=positive_int, default=1, help="BLAS threads per rank (default 1)")
    p.add_argument("--backend", default="numpy", help="xpnet backend (default numpy)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="float dtype (default float32)")
    p.add_argument("--wait-idle", type=non_negative_float, default=0.0, metavar="SECONDS",
                   help="before each run, wait up to this long for other tenants to go quiet (default 0)")
    return p.parse_args(argv)


def make_data(folder: Path, n: int) -> Path:
    """Letters-shaped samples: 784 features in [0, 1], 26 classes, a little structure to learn."""
    rng = np.random.default_rng(0)
    prototypes = rng.random((26, 784), dtype=np.float32)
    y = rng.integers(0, 26, n)
    X = np.clip(prototypes[y] + 0.3 * rng.standard_normal((n, 784), dtype=np.float32), 0, 1)
    path = folder / "letters-shaped.npz"
    np.savez(path, X=X, y=y)
    return path


def mpirun() -> str:
    beside = Path(sys.executable).with_name("mpirun")
    found = str(beside) if beside.exists() else shutil.which("mpirun")
    if found is None:
        sys.exit("no mpirun beside python or on PATH: pip install 'xpnet[mpi]'")
    return found


def run(ranks: int | None, threads: int, batch: int, npz: Path, out: Path, args) -> list[float]:
    """samples/s of each epoch of one training run (ranks None: one process, no MPI)."""
    train = [sys.executable, "-m", "xpnet", "train", "--data", f"npz:{npz}", "--epochs", str(args.epochs),
             "--batch-size", str(batch), "--backend", args.backend, "--dtype", args.dtype,
             "--no-progress", "--out", str(out)]
    command = train if ranks is None else [mpirun(), "-n", str(ranks), *train, "--distributed"]
    wait_for_idle(args.wait_idle)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(command, env=env, cwd=out.parent, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    history = json.loads((out / "history.json").read_text())
    shutil.rmtree(out)
    return [epoch["samples_per_s"] for epoch in history]


def main(argv=None) -> int:
    args = parse_args(argv)
    rank_counts, batches = args.ranks, args.batch_sizes
    cores = os.cpu_count()
    print(f"data-parallel scaling: {args.samples} samples x 784, network 784-256-128-26 relu momentum, "
          f"{args.backend} {args.dtype}, {args.threads} BLAS thread(s) a rank, {cores} cores, "
          f"best epoch of {args.epochs} x {args.repeats} interleaved runs")
    with tempfile.TemporaryDirectory(prefix="xpnet-scaling-") as tmp:
        npz = make_data(Path(tmp), args.samples)
        rows = [(f"{r} rank{'s' * (r > 1)}", r, args.threads) for r in rank_counts]
        most = max(rank_counts)
        if most > 1:
            rows.append((f"1 process, {most * args.threads} threads (no MPI)", None, most * args.threads))
        width = max(28, *(len(name) for name, _, _ in rows))  # the labels' column
        for batch in batches:
            best = {name: [] for name, _, _ in rows}
            for _ in range(args.repeats):
                for name, ranks, threads in rows:
                    best[name].append(max(run(ranks, threads, batch, npz, Path(tmp) / "run", args)))
            base = max(best[rows[0][0]])
            print(f"\nglobal batch {batch}")
            print(f"  {'':<{width}} {'samples/s':>10} {'vs ' + rows[0][0]:>12} {'spread':>8}")
            for name, _, _ in rows:
                speeds = best[name]
                spread = (max(speeds) - min(speeds)) / statistics.median(speeds)
                print(f"  {name:<{width}} {max(speeds) / 1000:>9.1f}k {max(speeds) / base:>11.2f}x "
                      f"{100 * spread:>7.0f}%")
    return 0


if __name__ == "__main__":
    run_main(main)
