"""lr="auto": the course's recipe (start at 0.001, x10 while the loss falls further, back /10
when it does not, then half a decade up), on every backend and against scripted trials."""

from __future__ import annotations

import math
import re

import pytest

import xpnet.train.learning_rate as learning_rate
import xpnet.train.state as state_module
import xpnet.train.steps as steps_module
from xpnet.backends import XpnetError
from xpnet.model import Network
from xpnet.train import learn
from xpnet.train.device_data import DeviceData
from assertions import one_line
from xor_and_rings import XOR_X, XOR_Y, rings


TRIALS = re.compile(r"lr auto: chose (\S+) \(loss (\S+) at the start; after \d+ steps, rate->loss: ((?:\S+->\S+ ?)+)\)$")


def test_lr_auto_picks_a_rate_reports_it_and_uses_it(single, monkeypatch):
    used = []
    real = steps_module.make_optimizer

    def recording(name, backend, params, lr, weight_decay=0.0):
        used.append(lr)
        return real(name, backend, params, lr, weight_decay)

    monkeypatch.setattr(steps_module, "make_optimizer", recording)  # the trials' optimizers (run_steps)
    monkeypatch.setattr(state_module, "make_optimizer", recording)  # the training run's
    lines = []
    X, y = rings(n=96)
    net = Network.from_sizes([2, 8, 3], single, activation="tanh", seed=0)
    learn(net, (X, y), epochs=2, batch_size=16, lr="auto", log=lines.append)
    line = next(line for line in lines if line.startswith("lr auto"))
    match = TRIALS.match(line)
    assert match, line
    chosen = float(match.group(1))
    start = float(match.group(2))
    trials = [(float(rate), float(loss.removesuffix("(flat)")))
              for rate, loss in (t.split("->") for t in match.group(3).split())]
    # the course's recipe: start at 0.001, then x10 while J falls further, back /10 when it does
    # not, and then one try half a decade up (3 times the rate stepped back to)
    assert trials[0][0] == 0.001
    steps = list(zip(trials, trials[1:]))
    for i, ((rate, _), (next_rate, _)) in enumerate(steps):
        between = i == len(steps) - 1 and next_rate == pytest.approx(rate / 10 * 3)
        assert next_rate == pytest.approx(rate * 10) or next_rate == pytest.approx(rate / 10) or between
    assert chosen in [rate for rate, _ in trials] and dict(trials)[chosen] < start
    assert used[:-1] == pytest.approx([rate for rate, _ in trials])  # one optimizer per trial,
    assert used[-1] == chosen  # then training with the rate it reported
    assert net.history[-1]["loss"] < net.history[0]["loss"]


def scripted(monkeypatch, losses):
    """Replace each trial by a script: losses(lr) -> (J half-way, J at the end). Returns the rates tried."""
    tried = []

    def fake(model, data, optimizer, lr, batch_size, seed, probe_x, probe_t):
        tried.append(lr)
        return losses(lr)

    monkeypatch.setattr(learning_rate, "_trial", fake)
    return tried


def run_finder(backend):
    net = Network.from_sizes([2, 3, 2], backend, seed=0)
    return learning_rate.find_learning_rate(net, DeviceData.from_host(net, XOR_X, XOR_Y), "sgd", 4, 0)


def falling_to(end):
    """A trial still falling when it ends: J half-way a tenth above where it ends."""
    return (1.1 * end, end)


def test_lr_auto_goes_up_by_tens_while_the_loss_falls_further_then_steps_back(reference, monkeypatch):
    ends = {0.001: 0.6, 0.01: 0.5, 0.1: 0.3, 1.0: 0.4, 0.3: 0.35}
    tried = scripted(monkeypatch, lambda lr: falling_to(ends[min(ends, key=lambda r: abs(r - lr))]))
    chosen, report = run_finder(reference)
    assert tried == pytest.approx([0.001, 0.01, 0.1, 1.0, 0.3])  # back /10, then half a decade up
    assert chosen == pytest.approx(0.1)  # 1 and 0.3 ended higher than 0.1 did
    assert "chose 0.1 " in report and report.endswith("0.001->0.6 0.01->0.5 0.1->0.3 1->0.4 0.3->0.35)")


def test_lr_auto_takes_the_rate_half_a_decade_up_when_it_does_better(reference, monkeypatch):
    """The course preset's case: 1 beats 0.1 and 10 does worse, but 3 (the course's own rate
    for its network) does better still."""
    ends = {0.001: 0.6, 0.01: 0.5, 0.1: 0.3, 1.0: 0.4, 0.3: 0.25}
    scripted(monkeypatch, lambda lr: falling_to(ends[min(ends, key=lambda r: abs(r - lr))]))
    chosen, report = run_finder(reference)
    assert chosen == pytest.approx(0.3) and "chose 0.3 " in report


def test_lr_auto_takes_the_larger_rate_when_it_does_as_well(reference, monkeypatch):
    """"Without being needlessly small": the course preset's 1 and 3 end within 0.2% after the
    trial's 100 steps (0.4814 and 0.4824), and over 15 epochs 3 reads 3 points more letters."""
    ends = {0.001: 0.6, 0.01: 0.5, 0.1: 0.3, 1.0: 0.4, 0.3: 0.301}
    scripted(monkeypatch, lambda lr: falling_to(ends[min(ends, key=lambda r: abs(r - lr))]))
    assert run_finder(reference)[0] == pytest.approx(0.3)
    ends[0.3] = 0.31  # 3% worse: the smaller rate stays
    assert run_finder(reference)[0] == pytest.approx(0.1)


def test_lr_auto_steps_back_when_the_loss_stalls(reference, monkeypatch):
    """The sigmoid-on-letters case: 10 still 'fell' from the start, but not below where 1 got."""
    ends = {0.001: 0.68, 0.01: 0.66, 0.1: 0.6, 1.0: 0.4, 10.0: 0.39998, 3.0: 0.41}  # 10: within 0.1% of 1
    tried = scripted(monkeypatch, lambda lr: falling_to(ends[min(ends, key=lambda r: abs(r - lr))]))
    chosen, _ = run_finder(reference)
    assert chosen == pytest.approx(1.0) and tried[-2:] == pytest.approx([10.0, 3.0])  # 3: 2.5% worse than 1


def test_lr_auto_takes_a_flat_saturated_loss_as_not_falling(reference, monkeypatch):
    """The course preset's case, made sharper: at 10 every sigmoid output is pushed to 0 and J
    sits flat, here even below where 1 got. The old search compared with the start alone, so
    such a rate 'fell' and won (lr 1000, 4% on the letters); a flat J is not falling."""
    trials = {0.001: falling_to(0.65), 0.01: falling_to(0.6), 0.1: falling_to(0.49), 1.0: falling_to(0.481),
              10.0: (0.47, 0.47), 100.0: (0.45, 0.45), 3.0: falling_to(0.5)}  # J at the start: 0.69
    tried = scripted(monkeypatch, lambda lr: trials[min(trials, key=lambda r: abs(r - lr))])
    chosen, report = run_finder(reference)
    assert chosen == pytest.approx(1.0) and tried[-2:] == pytest.approx([10.0, 3.0])
    assert "10->0.47(flat)" in report


def test_a_loss_at_the_bottom_is_not_flat(reference, monkeypatch):
    """A trial that converged (J near 0, so it no longer moves) has not stalled."""
    trials = {0.001: falling_to(0.5), 0.01: (1e-9, 1e-9), 0.1: (math.nan, math.nan),
              0.03: (math.nan, math.nan)}  # J at the start: 0.69
    scripted(monkeypatch, lambda lr: trials[min(trials, key=lambda r: abs(r - lr))])
    chosen, _ = run_finder(reference)
    assert chosen == pytest.approx(0.01)


def test_lr_auto_goes_down_by_tens_until_the_loss_falls(reference, monkeypatch):
    tried = scripted(monkeypatch, lambda lr: falling_to(0.1) if lr <= 1.1e-5 else (math.inf, math.inf))
    chosen, report = run_finder(reference)
    assert tried == pytest.approx([1e-3, 1e-4, 1e-5])
    assert chosen == pytest.approx(1e-5)


def test_lr_auto_gives_up_with_one_line_when_nothing_falls(reference, monkeypatch):
    tried = scripted(monkeypatch, lambda lr: (math.nan, math.nan))
    with pytest.raises(XpnetError) as info:
        run_finder(reference)
    one_line(info.value)
    assert min(tried) == pytest.approx(1e-7)
