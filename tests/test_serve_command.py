"""`xpnet serve` and `xpnet predict` from the command line: serve starts, says where and stops
on Ctrl-C; a bad checkpoint, a taken port or a decompression bomb is one line; the package
ships the page."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tomllib

import pytest
from PIL import Image

from xpnet.train.cli import main
from xpnet.train.data import glyph
from xpnet.train.serve.app import ASSETS
from conftest import ctrl_c_as_in_a_terminal
from serve_data import REPO, RUN, bomb, letter_png


def test_predict_refuses_a_bomb_in_one_line_too(tmp_path, capsys):
    (tmp_path / "bomb.png").write_bytes(bomb(glyph.MAX_PIXELS))
    assert main(["predict", str(RUN), str(tmp_path / "bomb.png"), "--backend", "numpy"]) == 1
    err = capsys.readouterr().err
    assert "bomb.png" in err and "50 million" in err and len(err.splitlines()) == 1


def test_a_bomb_pillow_refuses_itself_reads_as_one_sentence(tmp_path, capsys):
    """Past twice Pillow's own limit, Pillow refuses on opening, with a message ending in a full stop."""
    (tmp_path / "huge.png").write_bytes(bomb(2 * Image.MAX_IMAGE_PIXELS + 1))
    assert main(["predict", str(RUN), str(tmp_path / "huge.png"), "--backend", "numpy"]) == 1
    err = capsys.readouterr().err
    assert "huge.png" in err and "DecompressionBombError" in err and ".;" not in err, err
    assert len(err.splitlines()) == 1


def test_pyproject_ships_the_page():
    setup = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {"xpnet.train.serve", "xpnet.train.serve.static"} <= set(setup["packages"])
    globs = setup["package-data"]["xpnet.train.serve.static"]
    shipped = {p.name for g in globs for p in (REPO / "train" / "serve" / "static").glob(g)}
    assert {name for name, _ in ASSETS.values()} <= shipped


def test_serve_starts_says_where_and_stops_on_ctrl_c():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "xpnet", "serve", str(RUN), "--port", "0", "--host", "0.0.0.0",
                             "--backend", "numpy"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"serving {RUN} at http://0.0.0.0:"), line + proc.stderr.read()
        port = int(line.split(":")[2].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/api/predict", letter_png())
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped" in out
    assert err.startswith("xpnet: warning: listening on 0.0.0.0, so other machines can reach"), err
    assert len(err.splitlines()) == 1, err


def test_a_bad_checkpoint_or_a_taken_port_is_one_line(capsys, tmp_path):
    assert main(["serve", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xpnet: error: ") and len(err.splitlines()) == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", str(RUN), "--backend", "numpy", "--port", str(taken.getsockname()[1])]) == 1
    err = capsys.readouterr().err
    assert "cannot listen on 127.0.0.1 port" in err and "--port" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["serve", str(RUN), "--port", "70000"])
    assert "not a port" in capsys.readouterr().err
