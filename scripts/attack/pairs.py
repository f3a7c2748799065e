"""Trial kind 4: two processes on one run folder, and two trainings on one fresh letters cache.

Why: round two made one writer per run folder (an flock on `.xpnet-run.lock`); a second
process must be refused in one line naming the holder's PID, or finish correctly, and the
folder must end consistent. Two trainings generating one letters cache must both finish (or
one fail in one line) and leave the cache usable.
"""

import re
import time

from proc import SELFTEST_EXIT0, Proc, has_traceback, listing, refused, run, temps
from runs import BASE, compare_to_reference, copy_ref, epochs_of, history_len, pick_setting, read_checkpoint, train_args

# Why a member of a pair may be refused: the other holds the folder, or the folder's state at
# that moment (not made yet, no checkpoint yet, already trained). Any other refusal is a fault
# (round two's "blames disk space" was one).
PAIR_REASONS = ("is being written by another xpnet process", "is not a run folder", "is not a trained run folder",
                "already holds a trained run", "has already trained", ": No such file or directory; give a run folder")


def _judge_member(p, other):
    if p.hang:
        return [{"check": "hang in a pair", "proc": p.record()}]
    if p.rc == 0 and not has_traceback(p.stderr):
        return [{"check": "SELFTEST: exit 0 counted as a fault", "proc": p.record()}] if SELFTEST_EXIT0 else []
    if not refused(p):
        return [{"check": "pair member failed without one line and exit 1 or 2", "proc": p.record()}]
    if not any(reason in p.stderr for reason in PAIR_REASONS):
        return [{"check": "pair member refused for a reason the pair does not explain", "proc": p.record()}]
    named = re.findall(r"PID (\d+)", p.stderr)
    if named and int(named[-1]) != other.pid:
        return [{"check": "refusal names the wrong PID", "want": other.pid, "proc": p.record()}]
    return []


def _consistent(ctx, run_dir, cwd, a, b):
    probs = []
    ck = run_dir / "model.safetensors"
    if not ck.exists():
        if any(p.rc == 0 and p.args[0] == "train" for p in (a, b)):
            probs.append({"check": "a training exited 0 but left no checkpoint"})
        return probs
    ev = run(ctx, ["evaluate", run_dir], cwd, tag="ev")
    if ev.rc != 0 or has_traceback(ev.stderr):
        probs.append({"check": "folder does not evaluate after the pair", "proc": ev.record()})
    try:
        epochs = int(read_checkpoint(ck)[0]["__metadata__"]["epochs"])
    except (OSError, ValueError, KeyError):
        epochs = None
    if history_len(run_dir) != epochs:
        probs.append({"check": "history does not match the checkpoint", "history": history_len(run_dir),
                      "epochs": epochs})
    if temps(run_dir):
        probs.append({"check": "temp files after the pair", "temps": temps(run_dir)})
    return probs


def pair_on_folder(ctx, counts):
    rng = ctx.rng
    setting = pick_setting(rng)
    T = ctx.trial_dir("pair")
    run_dir = T / "run"
    more = ["train", "--resume", run_dir, "--no-progress", "--epochs", str(epochs_of(setting) + 1)]
    if rng.random() < 0.5:
        scenario = "fresh"
        first = train_args(setting, run_dir)
        second = rng.choice([train_args(setting, run_dir), ["evaluate", run_dir], ["report", run_dir], more])
    else:
        scenario = "finished"
        if copy_ref(ctx, setting, run_dir) is None:
            return {"skipped": "no reference"}, []
        opts = [more, ["evaluate", run_dir], ["report", run_dir]]
        first, second = rng.choice(opts), rng.choice(opts)
    a = Proc(ctx, first, T, tag="a")
    time.sleep(rng.uniform(0.0, 3.0))
    b = Proc(ctx, second, T, tag="b")
    a.wait(), b.wait()
    counts.signal("pair", f"{first[0]}{'-resume' if '--resume' in first else ''}+"
                          f"{second[0]}{'-resume' if '--resume' in second else ''}")
    probs = _judge_member(a, b) + _judge_member(b, a) + _consistent(ctx, run_dir, T, a, b)
    if scenario == "fresh" and second is not more and (run_dir / "model.safetensors").exists():
        if first[0] == second[0] == "train" and a.rc == b.rc == 0:
            probs.append({"check": "two trainings with one --out both exited 0 (one run lost)"})
        diff = compare_to_reference(ctx, setting, run_dir)
        if diff:  # what the pair leaves must be the run one training alone makes
            probs.append({"check": "pair's run differs from an unbroken run", "diff": diff})
    if probs:
        probs.append({"listing": listing(run_dir)})
    return {"setting": setting, "scenario": scenario, "procs": [a.record(), b.record()]}, probs


def pair_on_cache(ctx, counts):
    rng = ctx.rng
    T = ctx.trial_dir("pair-cache")
    cache = T / "cache"
    data = ["--train-samples", str(rng.choice([4000, 8000])), "--test-samples", "400", "--epochs", "1",
            "--layers", "32"]
    a = Proc(ctx, ["train", *BASE, *data, "--out", T / "a"], T, cache, tag="a")
    time.sleep(rng.uniform(0.0, 2.0))
    b = Proc(ctx, ["train", *BASE, *data, "--out", T / "b"], T, cache, tag="b")
    a.wait(), b.wait()
    counts.signal("pair-cache", f"rc{a.rc}/{b.rc}")
    probs = []
    for p in (a, b):
        if p.hang or has_traceback(p.stderr) or (p.rc != 0 and not refused(p)):
            probs.append({"check": "cache pair member failed badly", "proc": p.record()})
    if a.rc != 0 and b.rc != 0:
        probs.append({"check": "both trainings on one cache failed", "procs": [a.record(), b.record()]})
    c = run(ctx, ["train", *BASE, *data, "--out", T / "c"], T, cache, tag="c")
    if c.rc != 0 or has_traceback(c.stderr) or "damaged" in c.stderr:
        probs.append({"check": "cache unusable after the pair", "proc": c.record(), "cache": listing(cache)})
    if probs:
        probs.append({"listing": listing(cache)})
    return {"procs": [a.record(), b.record(), c.record()]}, probs


