"""Issue 17's last items and what an hour-long attack after round three found, each held here,
on a finished run: `xpnet evaluate` locks the run folder it draws into, as `train` and `report`
do; every refusal of `report` names a fix it offers (it has no --out); a checkpoint or JSON
edited past its checks is one line, and so is what the standard library refuses for serve.

Beside a live training, or on a run that lost a piece: test_reliability_attack_live.py."""

from __future__ import annotations

import errno
import json
import os

import pytest

from xpnet.train.run_lock import LOCK_NAME, RunLock

from full_disk import FullDisk
from assertions import assert_one_line_error, run_cli
from toy_runs import make_npz, train_args, train_ok


@pytest.fixture
def finished(capsys, tmp_path):
    """A finished two-epoch classifier run and its data."""
    data = make_npz(tmp_path)
    run = tmp_path / "run"
    train_ok(capsys, *train_args(data, run, "--epochs", "2"))
    return run


def test_evaluate_holding_the_lock_refuses_training_and_releases_it(capsys, finished, monkeypatch):
    """Held while it writes (a resume is refused meanwhile, naming the holder), free after."""
    import xpnet.train.evaluation as evaluation

    seen = []
    real = evaluation.report_classification

    def resume_meanwhile(*args, **kwargs):
        seen.append(run_cli(capsys, "train", "--resume", str(finished), "--epochs", "3", "--no-progress"))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "report_classification", resume_meanwhile)
    train_ok(capsys, "evaluate", str(finished), "--backend", "numpy")
    (code, _, err), = seen
    assert_one_line_error(code, err, f"PID {os.getpid()}", "then resume")
    assert "--out" not in err  # --resume names its run: another --out is no fix
    with RunLock() as lock:  # released
        lock.take(finished)


def test_report_refusals_name_fixes_report_offers(capsys, finished, monkeypatch):
    """Before: "choose another --out", an option report lacks."""
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(LOCK_NAME):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args)

    with monkeypatch.context() as m:
        m.setattr(os, "open", read_only)
        code, _, err = run_cli(capsys, "report", str(finished), "--backend", "numpy")
        assert_one_line_error(code, err, "make the folder writable", "xpnet evaluate RUN --out FOLDER")
        code, _, err = run_cli(capsys, "evaluate", str(finished), "--backend", "numpy")
        assert_one_line_error(code, err, "give --out a writable folder")
    with monkeypatch.context() as m:
        FullDisk(m, finished, "confusion.json")
        code, _, err = run_cli(capsys, "report", str(finished), "--backend", "numpy")
    assert_one_line_error(code, err, "No space left", "then run xpnet report again")
    assert "--out" not in err
    with monkeypatch.context() as m:
        FullDisk(m, finished, "confusion.json")
        code, _, err = run_cli(capsys, "evaluate", str(finished), "--backend", "numpy")
    assert_one_line_error(code, err, "No space left", "choose another --out")  # evaluate has one


def test_a_killed_reports_temp_files_are_swept_by_the_next_report_or_evaluate(capsys, finished, tmp_path):
    """Found by the attack: `xpnet report` SIGKILLed mid-write left `.groups.json.PID.HEX.xpnet.tmp`,
    and a finished report after it kept it (only a resumed training swept). Holding the lock,
    report and evaluate sweep the folder as training does; an --out folder no lock guards
    loses only temps older than ten minutes (another evaluate may be writing the fresh one)."""
    import time

    def plant(folder, age_s=0.0):
        tmp = folder / f".confusion.png.{99999}.{int(age_s):08x}.xpnet.tmp"
        tmp.write_bytes(b"half a picture")
        os.utime(tmp, (time.time() - age_s, time.time() - age_s))
        return tmp

    for command in ("report", "evaluate"):
        tmp = plant(finished)
        train_ok(capsys, command, str(finished), "--backend", "numpy")
        assert not tmp.exists(), command
    other = tmp_path / "other"
    other.mkdir()
    fresh, old = plant(other), plant(other, age_s=3600)
    train_ok(capsys, "evaluate", str(finished), "--out", str(other), "--backend", "numpy")
    assert fresh.exists() and not old.exists()


def signed_again(path, header_changes: dict, raw: bool = False) -> None:
    """Edit a checkpoint's header entries (JSON-encoded, or as given with `raw`) and sign it
    again (a valid digest): what loading checks beyond the digest."""
    from safetensors.numpy import load, save
    from xpnet.model.checkpoint import _digest, _header

    data = path.read_bytes()
    header, tensors = dict(_header(data, "x")), dict(load(data))
    header.update({k: v if raw else json.dumps(v) for k, v in header_changes.items()})
    header.pop("digest")
    header["digest"] = _digest(tensors, header)
    path.write_bytes(save(tensors, metadata=header))


@pytest.mark.parametrize("changes, needle", [
    ({"classes": ["a"]}, "class names"),  # predict: IndexError
    ({"classes": [None, {}, [1], 3.5]}, "class names"),  # predict answered the class `{}`
    ({"task": "regression"}, "class names"),  # evaluate, report: numpy broadcasting ValueError
    ({"config": {"data": 5}}, "settings is damaged"),  # evaluate, report: AttributeError
    ({"history": [{"epoch": "x"}]}, "history is damaged"),  # report: matplotlib's warning, empty curves
    ({"seed": -1}, "seed"),
])
def test_a_checkpoint_edited_and_signed_again_is_one_line(capsys, finished, changes, needle):
    """Found by the attack: header entries of the wrong kind under a valid digest were
    tracebacks in evaluate, predict and report, or a class named `{}`."""
    signed_again(finished / "model.safetensors", changes)
    rows = finished.parent / "toy.npz"
    for argv in (["evaluate", str(finished)], ["report", str(finished)],
                 ["predict", str(finished), "--input", str(rows), "--json"]):
        code, _, err = run_cli(capsys, *argv, "--backend", "numpy")
        assert_one_line_error(code, err, needle, "retrain or restore it")
    import xpnet

    with pytest.raises(xpnet.XpnetError, match=needle):
        xpnet.load(finished, "numpy")


def test_json_nested_past_pythons_stack_is_one_line_or_rebuilt(capsys, finished, monkeypatch):
    """Found by the attack: `[` * 100000 as history.json made `--resume` a RecursionError
    traceback; so would config.json, a checkpoint's header, and the files serve reads."""
    from xpnet.train.serve.app import _read_json

    deep = "[" * 100000 + "]" * 100000
    (finished / "history.json").write_text(deep)
    code, out, err = run_cli(capsys, "train", "--resume", str(finished), "--epochs", "3", "--no-progress")
    assert code == 0 and "Traceback" not in err and "rebuilt from the checkpoint" in out, err
    assert len(json.loads((finished / "history.json").read_text())) == 3
    with pytest.warns(UserWarning, match="cannot be read"):
        (finished / "confusion.json").write_text(deep)
        assert _read_json(finished / "confusion.json") is None
    (finished / "config.json").write_text(deep)
    code, _, err = run_cli(capsys, "train", "--resume", str(finished), "--epochs", "4", "--no-progress")
    assert_one_line_error(code, err, "config.json")
    signed_again(finished / "model.safetensors", {"accuracy": deep}, raw=True)  # one entry, validly signed
    code, _, err = run_cli(capsys, "evaluate", str(finished), "--backend", "numpy")
    assert_one_line_error(code, err, "unreadable header entry 'accuracy'")
    header = b"[" * 100000 + b"]" * 100000  # the safetensors header itself
    (finished / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    code, _, err = run_cli(capsys, "evaluate", str(finished), "--backend", "numpy")
    assert_one_line_error(code, err, "its header is not JSON")


def test_serve_answers_the_standard_librarys_own_refusals_in_one_line_of_json():
    """Found by the attack: a request line over 64 KiB (414) or an unknown HTTP version (505)
    got no answer at all, and the log a misleading warning (`'Handler' object has no attribute
    'path'`); an unknown method (501) got an HTML page. Each is now its status with one line of
    JSON, logged in one line, and the server goes on serving."""
    import socket
    import threading

    from serve_data import RUN
    from xpnet.train.serve.app import App
    from xpnet.train.serve.handler import Server

    logged = []
    server = Server(("127.0.0.1", 0), App(str(RUN), "numpy"), log=logged.append)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def ask(raw: bytes) -> bytes:
        with socket.create_connection(server.server_address[:2], timeout=10) as s:
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            return b"".join(iter(lambda: s.recv(65536), b""))

    try:
        for raw, status in ((b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
                            (b"BREW /api/predict HTTP/1.1\r\nHost: x\r\n\r\n", 501),
                            (b"GET /api/run HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431)):
            head, _, body = ask(raw).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 %d " % status) and b"application/json" in head, head
            assert list(json.loads(body)) == ["error"]
        body = ask(b"GET / HTTP/9.9\r\n\r\n")  # answered as HTTP/0.9 would be: the body alone
        assert json.loads(body) == {"error": "Invalid HTTP version (9.9)"}
        assert b'"classes"' in ask(b"GET /api/run HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    finally:
        server.shutdown()
        server.server_close()
    assert len(logged) == 4 and not any("warning" in line or "attribute" in line for line in logged), logged
    assert logged[0].startswith("xpnet serve: 414 - ") and "Request-URI Too Long" in logged[0]


def test_a_training_that_starts_into_the_out_folder_while_evaluate_loads_is_not_written_over(
        capsys, finished, tmp_path, monkeypatch):
    """`evaluate --out NEW` takes no lock on a folder that is not a run; should a training start
    into it while the data loads, the lock is taken before drawing, and evaluate is refused."""
    import xpnet.train.evaluation as evaluation

    new = tmp_path / "new"
    real = evaluation.load_data
    trainer = RunLock()

    def a_training_starts(*args, **kwargs):
        new.mkdir(exist_ok=True)
        trainer.take(new)  # as `xpnet train --out NEW` does before its first epoch
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "load_data", a_training_starts)
    with trainer:
        code, _, err = run_cli(capsys, "evaluate", str(finished), "--out", str(new), "--backend", "numpy")
    assert_one_line_error(code, err, f"PID {os.getpid()}", "give --out another folder")
    assert sorted(p.name for p in new.iterdir()) == [LOCK_NAME]


@pytest.mark.parametrize("damage", ["int32", "nan"])
def test_an_optimizer_state_that_is_not_finite_floats_is_one_line_at_resume(capsys, finished, damage):
    """Found by the attack: a momentum velocity re-signed as int32 passed the load and failed
    inside the first update (numpy's casting error, a traceback); a NaN one would poison the
    weights it touched."""
    import numpy as np
    from safetensors.numpy import load, save
    from xpnet.model.checkpoint import _digest, _header

    path = finished / "model.safetensors"
    data = path.read_bytes()
    header, tensors = dict(_header(data, "x")), dict(load(data))
    key = next(k for k in sorted(tensors) if k.startswith("optimizer."))
    tensors[key] = tensors[key].astype(np.int32) if damage == "int32" else np.full_like(tensors[key], np.nan)
    header.pop("digest")
    header["digest"] = _digest(tensors, header)
    path.write_bytes(save(tensors, metadata=header))
    code, _, err = run_cli(capsys, "train", "--resume", str(finished), "--epochs", "3", "--no-progress")
    assert_one_line_error(code, err, repr(key), "damaged")
