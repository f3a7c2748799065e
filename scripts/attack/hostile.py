"""Trial kind 5: hostile files fed to train/resume, evaluate, predict and report.

Why: a damaged or hand-made file must end in `xpnet:` lines and a non-zero exit, or succeed
honestly; never a traceback, a hang, or exit 0 with silently wrong output. Files are written
by hand (PNG chunks, .npy headers) so the harness needs no numpy or Pillow of its own.
"""

import json
import os
import struct
import zipfile
import zlib

from proc import SELFTEST_EXIT0, has_traceback, one_line_error, run, temps
from runs import copy_ref, history_len, read_checkpoint

NEST = "[" * 100000 + "]" * 100000
BAD_VALUES = [None, "x", -1, 2.5, float("nan"), 10 ** 400, {}, True]


def png(w, h, pixels=None):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    if pixels is None:
        rows = []
        for y in range(h):  # a dark bar on white: something to frame
            rows.append(b"\0" + bytes(0 if w // 3 < x < w // 2 and 4 < y < h - 4 else 255 for x in range(w)))
        pixels = zlib.compress(b"".join(rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + \
        chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def npy(descr, shape, body):
    head = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    head += b" " * (63 - (len(head) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head + body


def npz(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for k, v in members.items():
            z.writestr(k + ".npy", v)


def _f32(vals):
    return struct.pack(f"<{len(vals)}f", *vals)


def _i64(vals):
    return struct.pack(f"<{len(vals)}q", *vals)


def good_npz_members(n=40, f=4):
    X = [float((i * 7 + j) % 5) for i in range(n) for j in range(f)]
    return {"X": npy("<f4", (n, f), _f32(X)), "y": npy("<i8", (n,), _i64([i % 3 for i in range(n)]))}


def data_cases(T):
    """(name, spec, expect) for hostile data files: 'fail' or 'either'."""
    cases = []
    def add(name, body, suffix=".npz", expect="fail"):
        p = T / f"{name}{suffix}"
        if isinstance(body, dict):
            npz(p, body)
        else:
            p.write_bytes(body)
        cases.append((name, f"{'npz' if suffix == '.npz' else 'csv'}:{p}", expect))
    g = good_npz_members()
    add("npz-huge-rows", dict(g, X=npy("<f4", (10 ** 11, 4), _f32([1.0] * 16))))
    add("npz-huge-cols", dict(g, X=npy("<f4", (40, 2 ** 40), _f32([1.0] * 16))))
    add("npz-label-big", dict(g, y=npy("<i8", (40,), _i64([i % 3 for i in range(39)] + [10 ** 6]))))
    add("npz-label-u64max", dict(g, y=npy("<u8", (40,), struct.pack("<40Q", *([1] * 39 + [2 ** 64 - 1])))))
    add("npz-label-negative", dict(g, y=npy("<i8", (40,), _i64([-(i % 3) for i in range(40)]))))
    add("npz-nan", dict(g, X=npy("<f4", (40, 4), _f32([float("nan")] * 160))))
    add("npz-1e300", dict(g, X=npy("<f8", (40, 4), struct.pack("<160d", *([1e300] * 160)))))
    add("npz-classes-nonutf8", dict(g, classes=npy("|S2", (3,), b"\xff\xfe\xc3(ab")))
    add("npz-empty", b"")
    add("npz-garbage", os.urandom(300))
    add("npz-truncated", (lambda b: b[: len(b) // 2])(_zip_bytes(g)))
    add("npz-gap-labels", dict(g, y=npy("<i8", (40,), _i64([0, 7] * 20))), expect="either")
    add("csv-empty", b"", ".csv")
    add("csv-nan", b"a,b,y\n1,nan,0\n2,3,1\n4,5,0\n", ".csv")
    add("csv-1e300", b"a,b,y\n1,1e300,0\n2,3,1\n4,5,0\n", ".csv")
    add("csv-label-huge", b"a,b,y\n1,2,0\n2,3,99999999999999999999999\n4,5,1\n", ".csv")
    add("csv-nonutf8-class", b"a,b,y\n1,2,\xff\xfe\n2,3,cat\n4,5,\xff\xfe\n6,1,cat\n", ".csv", "either")
    add("csv-header-only", b"a,b,y\n", ".csv")
    add("csv-nonutf8-header", b"a\xff,b,y\n1,2,0\n2,3,1\n", ".csv", "either")
    return cases


def _zip_bytes(members):
    import io
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        for k, v in members.items():
            z.writestr(k + ".npy", v)
    return b.getvalue()


def ckpt_damage(run_dir, how, rng):
    ck = run_dir / "model.safetensors"
    b = ck.read_bytes()
    if how == "flip":
        n = struct.unpack("<Q", b[:8])[0]
        b = bytearray(b)
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(8 + n, len(b))] ^= 1 << rng.randrange(8)
        ck.write_bytes(bytes(b))
    elif how == "flip-anywhere":
        b = bytearray(b)
        b[rng.randrange(len(b))] ^= 0xFF
        ck.write_bytes(bytes(b))
    elif how == "truncate":
        ck.write_bytes(b[: rng.randrange(len(b))])
    elif how == "zero":
        ck.write_bytes(b"")
    elif how == "folder":
        ck.unlink(), ck.mkdir()
    elif how == "fifo":
        ck.unlink(), os.mkfifo(ck)
    elif how == "devzero":
        ck.unlink(), ck.symlink_to("/dev/zero")
    return "fail" if how != "flip-anywhere" else "either"


def json_damage(path, how, rng):
    if path.exists() or path.is_symlink():
        path.unlink() if not path.is_dir() else None
    bodies = {"garbage": b"\x00{garbage", "obj": b"{}", "list": b"[]", "nonutf8": b'{"a": "\xff\xfe"}',
              "nested": NEST.encode()}
    if how in bodies:
        path.write_bytes(bodies[how])
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "folder":
        path.mkdir()


def hostile(ctx, counts):
    rng = ctx.rng
    T = ctx.trial_dir("hostile")
    setting = rng.choice(["mlp3", "adam-small", "course"])
    run_dir = copy_ref(ctx, setting, T / "run")
    if run_dir is None:
        return {"skipped": "no reference"}, []
    cfg = json.loads((run_dir / "config.json").read_text())
    epochs = int(cfg.get("epochs", 3))
    resume = ["train", "--resume", run_dir, "--no-progress", "--epochs", str(epochs + 1)]
    pic = T / "A.png"
    pic.write_bytes(png(40, 48))
    family = rng.choice(["ckpt", "config", "history", "data", "predict", "lock", "config-value"])
    calls, expect, case = [], "fail", family
    precious = None
    if family == "ckpt":
        how = rng.choice(["flip", "flip-anywhere", "truncate", "zero", "folder", "fifo", "devzero"])
        case, expect = f"ckpt-{how}", ckpt_damage(run_dir, how, rng)
        calls = [["evaluate", run_dir], ["predict", run_dir, pic], ["report", run_dir], resume]
    elif family in ("config", "history"):
        how = rng.choice(["garbage", "obj", "list", "nonutf8", "nested", "fifo", "folder", "missing"])
        name = "config.json" if family == "config" else "history.json"
        json_damage(run_dir / name, how, rng)
        case, expect = f"{family}-{how}", "either"
        calls = [resume, ["evaluate", run_dir], ["report", run_dir], ["predict", run_dir, pic]]
    elif family == "config-value":
        field = rng.choice(["seed", "batch_size", "weight_decay", "shift", "epochs", "lr", "train_samples"])
        val = rng.choice(BAD_VALUES)
        cfg[field] = val
        (run_dir / "config.json").write_text(json.dumps(cfg))  # NaN and a 401-digit whole number as Python writes them
        case, expect = f"config-{field}={str(val)[:12]}", "either"
        calls = [["train", "--resume", run_dir, "--no-progress"], resume, ["evaluate", run_dir]]
        if field == "epochs" and isinstance(val, int) and val > 10 ** 4:
            calls = calls[1:]  # a resume with no --epochs trains as long as asked, as --epochs N would: not a hang
    elif family == "data":
        name, spec, expect = rng.choice(data_cases(T))
        case = f"data-{name}"
        calls = [["train", "--data", spec, "--no-progress", "--epochs", "1", "--out", T / "new"],
                 ["evaluate", run_dir, "--data", spec]]
    elif family == "predict":
        how = rng.choice(["truncated", "zero", "fifo", "bomb", "nonutf8-name", "text", "folder"])
        bad = T / "bad.png"
        if how == "truncated":
            bad.write_bytes(png(40, 48)[:60])
        elif how == "zero":
            bad.write_bytes(b"")
        elif how == "fifo":
            os.mkfifo(bad)
        elif how == "bomb":
            bad.write_bytes(png(100000, 100000, zlib.compress(b"\0" * 100001)))
        elif how == "text":
            bad.write_text("not a picture\n")
        elif how == "folder":
            bad.mkdir()
        else:
            bad = T / os.fsdecode(b"pic-\xff\xfe.png")
            bad.write_bytes(png(40, 48))
        case, expect = f"predict-{how}", "either" if how == "nonutf8-name" else "fail"
        calls = [["predict", run_dir, bad], ["predict", run_dir, pic, bad], ["predict", "--json", run_dir, bad]]
    elif family == "lock":
        precious = T / "precious.txt"
        precious.write_text("keep me\n")
        lock = run_dir / ".xpnet-run.lock"
        lock.unlink(missing_ok=True)
        if rng.random() < 0.7:
            os.link(precious, lock)
            case = "lock-hardlink"
        else:
            lock.symlink_to(precious)
            case = "lock-symlink"
        calls = [resume, ["evaluate", run_dir], ["report", run_dir]]
    counts.signal("hostile", case.split("=")[0])
    probs, procs = [], []
    for args in calls:
        p = run(ctx, args, T, limit=90, tag="h")
        procs.append(p.record())
        probs += judge(ctx, p, expect, run_dir, T)
    if precious is not None and precious.read_text() != "keep me\n":
        probs.append({"check": "planted lock's linked file changed", "now": precious.read_text()[:200]})
    return {"setting": setting, "case": case, "expect": expect, "procs": procs}, probs


def judge(ctx, p, expect, run_dir, cwd):
    rec = p.record()
    if p.hang:
        return [{"check": "hang on a hostile file", "proc": rec}]
    if has_traceback(p.stderr):
        return [{"check": "traceback on a hostile file", "proc": rec}]
    if p.rc != 0:
        ok = p.rc in (1, 2) and (one_line_error(p.stderr) or (p.args[0] == "predict" and _predict_refusal(p)))
        return [] if ok else [{"check": "failure not in xpnet: lines", "proc": rec}]
    if expect == "fail" or SELFTEST_EXIT0:
        return [{"check": "exit 0 on a file that must be refused", "proc": rec}]
    if p.args[0] == "train" and "--resume" in p.args:  # an honest resume: the folder is whole
        try:
            epochs = int(read_checkpoint(run_dir / "model.safetensors")[0]["__metadata__"]["epochs"])
        except (OSError, ValueError, KeyError) as e:
            return [{"check": f"resume exited 0, checkpoint unreadable: {e}", "proc": rec}]
        if history_len(run_dir) != epochs or temps(run_dir):
            return [{"check": "resume exited 0 but the folder is inconsistent", "proc": rec,
                     "history": history_len(run_dir), "epochs": epochs, "temps": temps(run_dir)}]
    return []


def _predict_refusal(p):
    """predict names each picture it cannot read on a line of its own (`PATH: error: ...`, or a JSON
    object with an "error" under --json) and reads the rest: RELIABILITY.md's row for named pipes."""
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    named = all(l.startswith("xpnet") or any(l.startswith(f"{a}: error: ") for a in p.args) for l in lines)
    pictures = [a for a in p.args[1:] if a != "--json"][1:]  # after the run
    if "--json" not in p.args:
        refused_ones = {a for a in pictures for l in lines if l.startswith(f"{a}: error: ")}
        read = all(any(l.startswith(f"{a}: ") for l in p.stdout.splitlines()) for a in pictures if a not in refused_ones)
        return bool(lines) and named and bool(refused_ones) and read
    try:
        answers = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    except ValueError:
        return False  # --json must write JSON
    return named and len(answers) == len(pictures) and any("error" in a for a in answers)
