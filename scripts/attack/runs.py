"""Tiny run settings, their unbroken reference runs, and the checks of a finished run folder.

Why: a killed-and-resumed run is only right if it ends where an unbroken run with the same
settings ends. The checkpoint's header carries timings and cache facts that differ run to
run, so "byte-equal" is judged as the earlier rounds did: every tensor's bytes, the training
state, the epoch count and every history record but its timings.
"""

import json
import shutil
import struct
from pathlib import Path

from proc import has_traceback, listing, run, temps

BASE = ["--data", "letters", "--no-progress"]
SETTINGS = {
    "mlp3": ["--train-samples", "3000", "--test-samples", "500", "--epochs", "3"],
    "adam-small": ["--train-samples", "2000", "--test-samples", "400", "--epochs", "4", "--layers", "64,32",
                   "--optimizer", "adam", "--batch-size", "32"],
    "course": ["--preset", "course", "--train-samples", "2000", "--test-samples", "400", "--epochs", "2"],
    "cnn": ["--preset", "cnn", "--train-samples", "800", "--test-samples", "200", "--epochs", "2"],
    "val-patience": ["--train-samples", "2500", "--test-samples", "400", "--epochs", "4", "--val-fraction", "0.1",
                     "--patience", "2", "--layers", "128", "--seed", "3"],
}
WEIGHTS = {"mlp3": 4, "adam-small": 3, "course": 2, "cnn": 1, "val-patience": 2}
TIMING_KEYS = {"seconds", "samples_per_s"}


def pick_setting(rng):
    names = list(SETTINGS)
    return rng.choices(names, [WEIGHTS[n] for n in names])[0]


def train_args(setting, out):
    return ["train", *BASE, *SETTINGS[setting], "--out", str(out)]


def epochs_of(setting):
    a = SETTINGS[setting]
    return int(a[a.index("--epochs") + 1])


def reference(ctx, setting):
    """The unbroken run of `setting` (made once per attack, in the shared cache); None if it failed."""
    if setting in ctx.refs:
        return ctx.refs[setting]
    d = ctx.work / "refs"
    d.mkdir(exist_ok=True)
    out = d / setting
    shutil.rmtree(out, ignore_errors=True)
    p = run(ctx, train_args(setting, out), d)
    ctx.ref_secs[setting] = p.record()["seconds"]
    ctx.refs[setting] = out if p.rc == 0 and not has_traceback(p.stderr) else None
    if ctx.refs[setting] is None:
        print(f"  reference run {setting} FAILED rc={p.rc}: {p.stderr[-400:]}", flush=True)
    return ctx.refs[setting]


def copy_ref(ctx, setting, dest):
    ref = reference(ctx, setting)
    if ref is None:
        return None
    shutil.copytree(ref, dest, symlinks=True)
    return dest


def read_checkpoint(path):
    b = Path(path).read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    return head, b[8 + n:]


def essence(path):
    """What must be bitwise equal between a resumed run and an unbroken one."""
    head, data = read_checkpoint(path)
    meta = head.pop("__metadata__", {})
    tensors = {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in sorted(head.items())}
    hist = json.loads(meta.get("history", "[]"))
    hist = [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in hist] if isinstance(hist, list) else hist
    return {"tensors": tensors, "training_state": meta.get("training_state"), "epochs": meta.get("epochs"),
            "history": json.dumps(hist, sort_keys=True)}


def compare_to_reference(ctx, setting, run_dir):
    """None if equal, else a short description of what differs."""
    ref = reference(ctx, setting)
    if ref is None:
        return None
    try:
        a, b = essence(ref / "model.safetensors"), essence(Path(run_dir) / "model.safetensors")
    except (OSError, ValueError, struct.error) as e:
        return f"cannot read checkpoint: {e}"
    diffs = [k for k in ("training_state", "epochs", "history") if a[k] != b[k]]
    if a["tensors"].keys() != b["tensors"].keys():
        diffs.append("tensor names")
    else:
        diffs += [f"tensor {k}" for k in a["tensors"] if a["tensors"][k] != b["tensors"][k]]
    return ", ".join(diffs[:8]) or None


def history_len(run_dir):
    try:
        h = json.loads((Path(run_dir) / "history.json").read_text())
        return len(h) if isinstance(h, list) else None
    except (OSError, ValueError):
        return None


def ref_history_len(ctx, setting):
    ref = reference(ctx, setting)
    return history_len(ref) if ref else None


def folder_problems(ctx, setting, run_dir, cwd):
    """Check a run folder that should be finished: evaluates, history matches, no temps, equals the reference."""
    probs = []
    ev = run(ctx, ["evaluate", run_dir], cwd, tag="ev")
    if ev.rc != 0 or has_traceback(ev.stderr):
        probs.append({"check": "evaluate", "proc": ev.record()})
    hl, want = history_len(run_dir), ref_history_len(ctx, setting)
    if hl is None or (want is not None and hl != want):
        probs.append({"check": "history length", "got": hl, "want": want})
    left = temps(run_dir)
    if left:
        probs.append({"check": "temp files left", "temps": left})
    if not (Path(run_dir) / "curves.png").exists():
        probs.append({"check": "report missing (curves.png)"})
    diff = compare_to_reference(ctx, setting, run_dir)
    if diff:
        probs.append({"check": "differs from unbroken run", "diff": diff})
    if probs:
        probs.append({"listing": listing(run_dir)})
    return probs


def complete(run_dir):
    d = Path(run_dir)
    return (d / "model.safetensors").exists() and (d / "curves.png").exists() and not temps(d)
