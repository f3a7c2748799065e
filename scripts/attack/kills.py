"""Trial kinds 1-3: signals to `xpnet train`, to letter generation, and to `report`/`evaluate`.

Why: RELIABILITY.md promises that no finished epoch is lost, no half file is left, no pool
worker outlives its parent, and a Ctrl-C is one line with exit 130. Each trial sends SIGKILL,
SIGTERM or SIGINT at a random moment or just as a temp file appears, then finishes the job
the way a user would and checks the folder. `judge_signal` holds the classification the
earlier rounds settled on (shutdown SIGINTs, SIGINTs at a finished exit).
"""

import time
from pathlib import Path

from proc import (SELFTEST_EXIT0, Proc, group_pids, has_traceback, listing, one_line_error, refused, run, temps,
                  watch_for)
from runs import complete, copy_ref, folder_problems, pick_setting, reference, train_args

SIG_CHOICES = ["SIGKILL", "SIGKILL", "SIGTERM", "SIGINT", "SIGINT"]
EXPECT_RC = {"SIGKILL": -9, "SIGTERM": -15}
TEMP_KINDS = {"ckpt": ["model.safetensors"], "history": ["history.json"], "cache": ["letters-"],
              "png": [".png"], "any": [""]}


def judge_signal(p, folder=None):
    """Problems with how `p` ended after its last signal (none if the signal never landed)."""
    rec = p.record()
    if not p.signals:  # it ended before its moment came: it must have finished its work, or
        # refused a resume whose training was done and whose report an earlier kill cut short
        report_advice = refused(p) and "already trained" in p.stderr and "xpnet report" in p.stderr
        ok = not has_traceback(p.stderr) and (p.rc == 0 or report_advice) and p.hang is None
        return [] if ok else [{"check": "unsignalled process failed", "proc": rec}]
    name, at = p.signals[-1]
    if p.hang:
        return [{"check": "hang after signal", "proc": rec}]
    err = p.stderr
    if has_traceback(err):
        # A Ctrl-C inside Python's own start-up, before any module of xpnet runs, is Python's
        # to report ("Not covered yet"); a traceback through the site's code never is.
        if name == "SIGINT" and at < 0.15 and p.site not in err:
            return []
        return [{"check": f"traceback after {name}", "proc": rec}]
    finished_as_it_landed = p.rc == 0 and rec["last_signal_to_exit_s"] <= 0.05 and (folder is None or complete(folder))
    if name in EXPECT_RC:
        return [] if p.rc == EXPECT_RC[name] or finished_as_it_landed else [{"check": f"exit code after {name}", "proc": rec}]
    said = any(l.startswith("xpnet") and "interrupted" in l for l in err.splitlines())
    if p.rc == 130:
        return [] if one_line_error(err) and said else [{"check": "SIGINT 130 without its one line", "proc": rec}]
    if p.rc == -2:
        if said or at < 0.15 or (folder is not None and complete(folder)):
            return []
        return [{"check": "SIGINT ended by the signal, work missing and unsaid", "proc": rec}]
    if p.rc == 0:
        return [] if finished_as_it_landed else [{"check": "SIGINT lost: exit 0", "proc": rec}]
    return [{"check": "SIGINT: unexpected exit code", "proc": rec}]


def _fire(ctx, p, sig, folders, est, modes=("time", "time", "ckpt", "history", "png", "any")):
    """Send `sig` to `p` at a random moment or as a temp file appears; returns the mode used."""
    rng = ctx.rng
    mode = rng.choice(modes)
    if mode == "time":
        deadline = time.monotonic() + rng.uniform(0.05, max(0.5, est * 1.1))
        while p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
    else:
        watch_for(p, folders, TEMP_KINDS[mode], time.monotonic() + max(30.0, est * 4))
    p.send(sig)
    return mode


def finish_run(ctx, setting, run_dir, cwd, procs):
    """Resume (or rerun, where nothing was saved) to the end, as a user would. Returns problems."""
    probs = []
    for _ in range(3):
        if complete(run_dir):
            return probs
        if (Path(run_dir) / "model.safetensors").exists():
            p = run(ctx, ["train", "--resume", run_dir, "--no-progress"], cwd, tag="resume")
        else:
            p = run(ctx, train_args(setting, run_dir), cwd, tag="rerun")
        procs.append(p.record())
        if has_traceback(p.stderr) or p.hang:
            return probs + [{"check": "finishing run failed", "proc": p.record()}]
        if p.rc == 0:
            if SELFTEST_EXIT0:
                probs.append({"check": "SELFTEST: exit 0 counted as a fault", "proc": p.record()})
            continue
        if "xpnet report" in p.stderr and "already trained" in p.stderr:
            r = run(ctx, ["report", run_dir], cwd, tag="report")
            procs.append(r.record())
            if r.rc != 0 or has_traceback(r.stderr):
                return probs + [{"check": "report after advice failed", "proc": r.record()}]
            continue
        return probs + [{"check": "finishing run refused", "proc": p.record()}]
    return probs


def kill_train(ctx, counts):
    setting = pick_setting(ctx.rng)
    ref = reference(ctx, setting)
    T = ctx.trial_dir("kill-train")
    run_dir = T / "run"
    fresh_cache = ctx.rng.random() < 0.25
    cache = (T / "cache") if fresh_cache else ctx.shared_cache
    est = ctx.ref_secs.get(setting, 10.0) + (5.0 if fresh_cache else 0)
    procs, probs = [], []
    for i in range(ctx.rng.randint(1, 3)):
        if complete(run_dir):
            break
        args = ["train", "--resume", run_dir, "--no-progress"] if (run_dir / "model.safetensors").exists() \
            else train_args(setting, run_dir)
        p = Proc(ctx, args, T, cache, tag=f"k{i}")
        sig = ctx.rng.choice(SIG_CHOICES)
        modes = ("time", "time", "ckpt", "history", "png", "any") + (("cache", "cache") if fresh_cache else ())
        mode = _fire(ctx, p, sig, [run_dir, cache], est, modes)
        p.wait()
        counts.signal("kill-train", sig if p.signals else "ended-before-signal")
        rec = p.record()
        rec["mode"] = mode
        procs.append(rec)
        probs += judge_signal(p, run_dir)
    probs += finish_run(ctx, setting, run_dir, T, procs)
    if ref is not None and not probs:
        probs += folder_problems(ctx, setting, run_dir, T)
    return {"setting": setting, "fresh_cache": fresh_cache, "procs": procs}, probs


def kill_generation(ctx, counts):
    T = ctx.trial_dir("kill-gen")
    cache = T / "cache"
    n = ctx.rng.choice([12000, 20000, 30000])
    data = ["train", "--data", "letters", "--no-progress", "--train-samples", str(n), "--test-samples", "500",
            "--epochs", "1", "--layers", "32", "--seed", str(ctx.rng.randint(0, 9))]
    p = Proc(ctx, [*data, "--out", T / "run"], T, cache, tag="gen")
    sig = ctx.rng.choice(["SIGKILL", "SIGTERM", "SIGINT"])
    deadline = time.monotonic() + 60
    while p.poll() is None and len(group_pids(p.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    workers_seen = len(group_pids(p.pid)) > 1
    time.sleep(ctx.rng.uniform(0.0, 2.5))
    p.send(sig)
    p.wait()
    counts.signal("kill-gen", (sig if p.signals else "ended-before-signal") + ("" if workers_seen else "-noworkers"))
    probs = judge_signal(p)
    time.sleep(3.0)
    alive = group_pids(p.pid)
    if alive:
        time.sleep(7.0)
        probs.append({"check": "pool workers alive 3 s after the parent ended", "pids": alive,
                      "still_alive_10s": group_pids(p.pid), "proc": p.record()})
    again = run(ctx, [*data, "--out", T / "run2"], T, cache, tag="gen2")
    if again.rc != 0 or has_traceback(again.stderr) or again.hang:
        probs.append({"check": "next run with that cache failed", "proc": again.record(),
                      "cache": listing(cache)})
    return {"samples": n, "signal": sig, "workers_seen": workers_seen, "procs": [p.record(), again.record()]}, probs


def kill_report(ctx, counts):
    setting = pick_setting(ctx.rng)
    T = ctx.trial_dir("kill-report")
    run_dir = copy_ref(ctx, setting, T / "run")
    if run_dir is None:
        return {"skipped": "no reference"}, []
    cmd = ctx.rng.choice(["report", "evaluate"])
    p = Proc(ctx, [cmd, run_dir], T, tag=cmd)
    sig = ctx.rng.choice(SIG_CHOICES)
    mode = _fire(ctx, p, sig, [run_dir], 1.4, ("time", "time", "png", "any", "any"))
    p.wait()
    counts.signal(f"kill-{cmd}", sig if p.signals else "ended-before-signal")
    probs = judge_signal(p)
    again = run(ctx, [cmd, run_dir], T, tag=cmd + "2")
    if again.rc != 0 or has_traceback(again.stderr) or again.hang:
        probs.append({"check": f"next {cmd} failed", "proc": again.record()})
    if temps(run_dir):
        probs.append({"check": f"temp files after the next {cmd}", "listing": listing(run_dir)})
    rec = p.record()
    rec["mode"] = mode
    return {"setting": setting, "cmd": cmd, "procs": [rec, again.record()]}, probs
