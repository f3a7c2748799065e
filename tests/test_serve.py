"""`xpnet serve`: the JSON API over real HTTP on an ephemeral port, every bad input, and many
clients at once (the command line's start, warning and refusals: test_serve_command.py).

The server runs in this process on a thread (as `xpnet serve` runs it, ThreadingHTTPServer on
127.0.0.1), over the small checkpoint in tests/data, so no test trains anything.
"""

from __future__ import annotations

import http.client
import io
import json
import shutil
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from xpnet.train.data.glyph import load_image
from xpnet.train.predict import predict_images
from xpnet.train.serve.app import ASSETS, LARGE, MAX_BODY, MAX_PIXELS, App
from xpnet.train.serve.handler import Server
from serve_data import REPO, RUN, bomb, letter_png


@pytest.fixture(scope="module")
def server():
    logged = []
    srv = Server(("127.0.0.1", 0), App(str(RUN), "numpy"), log=logged.append)
    srv.logged = logged
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(server, method, path, body=None, headers=None):
    """(status, headers, parsed JSON or raw bytes) of one request on a fresh connection."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        data = res.read()
        kind = res.getheader("Content-Type", "")
        return res.status, res, json.loads(data) if kind.startswith("application/json") else data
    finally:
        conn.close()


def assert_refused(server, status, path="/api/predict", method="POST", body=None, headers=None, says=""):
    """A refusal is the status, one line of JSON error, and the server reads a letter right after."""
    got, _, answer = request(server, method, path, body, headers)
    assert got == status, answer
    assert set(answer) == {"error"} and answer["error"] and "\n" not in answer["error"], answer
    assert says in answer["error"], answer["error"]
    ok, _, after = request(server, "POST", "/api/predict", letter_png())
    assert ok == 200 and after["letter"], after
    return answer["error"]


def test_predict_gives_the_fields_of_predict_json_and_the_framed_input(server, tmp_path):
    png = letter_png()
    (tmp_path / "L.png").write_bytes(png)
    status, res, answer = request(server, "POST", "/api/predict", png, {"Content-Type": "image/png"})
    assert status == 200 and res.getheader("Cache-Control") == "no-store"
    expected = next(predict_images(str(RUN), [str(tmp_path / "L.png")], "numpy"))
    assert set(answer) == set(expected) | {"input"}
    assert answer["letter"] == expected["letter"]
    assert answer["probability"] == pytest.approx(expected["probability"], abs=1e-6)
    assert [c for c, _ in answer["runners_up"]] == [c for c, _ in expected["runners_up"]]
    framed = np.array(answer["input"])
    assert framed.shape == (28, 28)
    np.testing.assert_allclose(framed, load_image(tmp_path / "L.png"), atol=5e-4)  # rounded to 3 places


def test_jpeg_and_top_n(server):
    status, _, answer = request(server, "POST", "/api/predict?top=26", letter_png(format="JPEG", quality=80))
    assert status == 200
    names = [answer["letter"]] + [c for c, _ in answer["runners_up"]]
    assert sorted(names) == [chr(ord("A") + i) for i in range(26)]
    probabilities = [answer["probability"]] + [p for _, p in answer["runners_up"]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) == pytest.approx(1, abs=1e-4)


def test_not_an_image_is_a_400(server):
    said = assert_refused(server, 400, body=b"hello, this is text", says="cannot read image")
    assert "0x" not in said  # no memory address of a Python object in what the client reads


def test_a_truncated_png_is_a_400(server):
    png = letter_png()
    assert_refused(server, 400, body=png[: len(png) // 2], says="cannot read image")


def test_a_decompression_bomb_is_refused_before_it_is_decoded(server):
    body = bomb(MAX_PIXELS)
    assert len(body) < MAX_BODY
    assert_refused(server, 400, body=body, says="16 million")


def test_a_photo_sized_picture_is_read(server):
    body = letter_png(size=(1400, 1000))
    assert Image.open(io.BytesIO(body)).size[0] * 1000 > LARGE  # it takes the large slot
    status, _, answer = request(server, "POST", "/api/predict", body)
    assert status == 200 and answer["letter"]


def test_a_blank_picture_is_a_400(server):
    buf = io.BytesIO()
    Image.new("L", (50, 50), 255).save(buf, format="PNG")
    assert_refused(server, 400, body=buf.getvalue(), says="flat colour")


def test_an_empty_body_is_a_400(server):
    assert_refused(server, 400, body=b"", says="empty")


def test_a_body_over_the_cap_is_a_413_and_its_sender_reads_it(server):
    assert_refused(server, 413, body=b"\0" * (MAX_BODY + 1), says="at most")


def test_a_413_is_said_before_the_body_when_the_client_asks(server):
    conn = socket.create_connection(server.server_address[:2], timeout=10)
    with conn:
        conn.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        head = conn.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413") and "100 Continue" not in head


def test_no_length_or_a_chunked_body_is_a_411(server):
    assert_refused(server, 411, headers={"Transfer-Encoding": "chunked"}, body=b"5\r\nhello\r\n0\r\n\r\n")
    conn = socket.create_connection(server.server_address[:2], timeout=10)
    with conn:
        conn.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 411")


def test_a_bad_length_is_a_400(server):
    assert_refused(server, 400, headers={"Content-Length": "12abc"}, says="not a number of bytes")


def test_a_client_that_leaves_mid_body_costs_nothing(server):
    before = len(server.logged)
    conn = socket.create_connection(server.server_address[:2], timeout=10)
    conn.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + letter_png()[:100])
    conn.close()
    status, _, answer = request(server, "POST", "/api/predict", letter_png())
    assert status == 200 and answer["letter"]
    assert not [line for line in server.logged[before:] if " 500 " in line or "internal" in line]


def test_a_bug_is_a_500_in_one_line_and_the_server_goes_on(server, monkeypatch, capsys):
    def broken(body, top):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(server.app, "predict", broken)
    status, _, answer = request(server, "POST", "/api/predict", letter_png())
    monkeypatch.undo()
    assert status == 500 and answer == {"error": "internal error (ZeroDivisionError); the server log has the details"}
    assert "Traceback" in capsys.readouterr().err  # the log keeps the bug's traceback
    status, _, answer = request(server, "POST", "/api/predict", letter_png())
    assert status == 200 and answer["letter"]


def test_refusals_are_logged_as_one_line_each(server):
    before = len(server.logged)
    request(server, "GET", "/nope")
    assert server.logged[before:] == ["xpnet serve: 404 GET /nope: no page '/nope': the page is / and the API is "
                                      "POST /api/predict and GET /api/run"]


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/api/predict", 405), ("PUT", "/api/predict", 405), ("DELETE", "/", 405), ("POST", "/", 405),
    ("POST", "/api/run", 405), ("GET", "/nope", 404), ("GET", "/../../etc/passwd", 404),
    ("GET", "/static/app.js", 404), ("GET", "/model.safetensors", 404), ("GET", "/history.json", 404),
])
def test_wrong_method_or_path(server, method, path, status):
    assert_refused(server, status, path, method, body=b"x" if method in ("POST", "PUT") else None)
    if status == 405:
        _, res, _ = request(server, method, path, b"x" if method in ("POST", "PUT") else None)
        assert res.getheader("Allow") in ("GET", "POST")


def test_a_bad_top_is_a_400(server):
    for top in ("0", "27", "x", "-1"):
        assert_refused(server, 400, f"/api/predict?top={top}", body=letter_png(), says="whole number")


def test_fifty_concurrent_requests_all_answer_the_same(server):
    png = letter_png()
    _, _, alone = request(server, "POST", "/api/predict", png)
    start = threading.Barrier(50)

    def one(_):
        start.wait(timeout=30)
        return request(server, "POST", "/api/predict", png)

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(one, range(50)))
    assert [status for status, _, _ in results] == [200] * 50
    assert all(answer == alone for _, _, answer in results)


def test_one_connection_serves_many_requests(server):
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    try:
        statuses, sockets = [], set()
        for body in (letter_png(), b"not a picture", letter_png()):
            conn.request("POST", "/api/predict", body)
            res = conn.getresponse()
            res.read()
            statuses.append(res.status)
            sockets.add(id(conn.sock))
    finally:
        conn.close()
    assert statuses == [200, 400, 200] and len(sockets) == 1  # a refusal keeps the connection too


def test_the_page_and_its_files_come_from_the_package(server):
    for path, (name, kind) in ASSETS.items():
        status, res, body = request(server, "GET", path)
        assert status == 200 and res.getheader("Content-Type") == kind
        assert body == (REPO / "train" / "serve" / "static" / name).read_bytes()
        assert "default-src 'self'" in res.getheader("Content-Security-Policy")
    page = request(server, "GET", "/")[2].decode()
    assert "http://" not in page and "https://" not in page  # nothing from the network


def test_run_gives_config_and_what_the_folder_holds(server, tmp_path):
    status, _, run = request(server, "GET", "/api/run")
    assert status == 200
    assert run["config"]["hidden"] == [32] and run["sizes"] == [784, 32, 26] and len(run["classes"]) == 26
    assert run["history"] == [] and run["confusion"] is None  # the folder has neither
    folder = tmp_path / "run"
    shutil.copytree(RUN, folder)
    history = [{"epoch": 1, "loss": 1.0, "accuracy": 0.5}]
    (folder / "history.json").write_text(json.dumps(history))
    (folder / "confusion.json").write_text("{not json")
    with pytest.warns(UserWarning, match="confusion.json cannot be read"):
        summary = App(str(folder), "numpy").run
    assert summary["history"] == history and summary["confusion"] is None and summary["groups"] == []
    groups = [{"name": "printed, unseen font families", "samples": 40, "accuracy": 0.9}]
    (folder / "groups.json").write_text(json.dumps(groups))
    (folder / "confusion.json").unlink()
    assert App(str(folder), "numpy").run["groups"] == groups
