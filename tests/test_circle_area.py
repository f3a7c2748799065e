"""The course's circle example (examples/circle_area.py) keeps both of its promises on numpy."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xpnet import train
from assertions import assert_on

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "circle_area.py"


def load_example():
    spec = importlib.util.spec_from_file_location("circle_area", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it is executing
    spec.loader.exec_module(module)
    return module


circle = load_example()


@pytest.fixture(scope="module")
def run():
    """One run of the script's main on numpy: its results and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = circle.main(["--backend", "numpy"])
    return results, out.getvalue()


def test_the_data_are_the_course_table():
    r, area = circle.circle_table(circle.theta_radii())
    for radius, course_area in [(1, 3.14), (1.4, 6.15), (2, 12.56), (10, 314), (20, 1256)]:
        assert radius in r
        assert area[r == radius][0] == pytest.approx(course_area, rel=2e-3)  # the course used 3.14
    np.testing.assert_allclose(area, math.pi * r ** 2, rtol=1e-15)
    assert r.min() == 1 and r.max() == 20


def test_one_parameter_model_learns_pi(run):
    results, _ = run
    model = results["model"]
    assert model.architecture() == {"sizes": [1, 1], "activations": ["identity"], "loss": "quadratic"}
    assert_on(results["backend"], model.layers[0].W, (1, 1), dtype="float32")
    assert abs(results["theta"] - math.pi) < 0.01
    assert abs(results["bias"]) < 0.05  # no offset in the data: the bias stays near 0
    assert model.history[-1]["loss"] < 1e-3 * model.history[0]["loss"]


def test_test_model_answers_the_course_question(run):
    results, _ = run
    answer = train.test(results["model"], 100 ** 2)  # the feature is r^2
    assert type(answer) is float and answer == results["area_100"]
    assert answer == pytest.approx(math.pi * 100 ** 2, rel=1e-3)


def test_mlp_fits_areas_within_one_percent_inside_the_training_range(run):
    results, _ = run
    mlp = results["mlp"]
    assert mlp.model.sizes == [1, 16, 16, 1] and mlp.model.activations == ["tanh", "tanh", "identity"]
    radii = np.linspace(1.0, 20.0, 191)  # between the training radii too
    areas = mlp.area(radii)
    assert areas.shape == (191,)
    assert np.max(np.abs(areas - math.pi * radii ** 2) / (math.pi * radii ** 2)) < 0.01
    assert results["mlp_worst_error"] < 0.01


def test_main_prints_theta_and_the_area_for_radius_100(run):
    _, printed = run
    theta = re.search(r"theta = (\d+\.\d+)", printed)
    area = re.search(r"test\(model, 100\*\*2\) = (\d+\.\d)", printed)
    assert theta and abs(float(theta.group(1)) - math.pi) < 0.01
    assert area and float(area.group(1)) == pytest.approx(math.pi * 1e4, rel=1e-3)
    assert "lr auto: chose 1e-05" in printed
    assert "backend: numpy (cpu, float32)" in printed


def test_runs_as_a_script(tmp_path):
    """`python examples/circle_area.py` from anywhere, with no install step."""
    repo = SCRIPT.parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("XPNET_BACKEND", "XPNET_DEVICE")}
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != repo]
    env["PYTHONPATH"] = os.pathsep.join(paths)  # keep site paths, drop the checkout itself
    done = subprocess.run([sys.executable, str(SCRIPT), "--backend", "numpy"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "theta = 3.141" in done.stdout and "test(model, 100**2) = 3141" in done.stdout
    assert done.stderr == ""  # no warnings, no traceback


def test_a_bad_backend_is_a_clean_error():
    from xpnet.backends import BackendError

    with pytest.raises(BackendError):
        circle.main(["--backend", "tensorflow"])
