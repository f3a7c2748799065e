"""`xpnet serve`'s page in a real headless Chromium: letters drawn with pointer events (a mouse
and a finger), undo, clear, a picture chosen or dropped, an error shown, and the run's tab.

Chromium is the distribution's (`apt-get install chromium`), driven by Playwright for Python
(`pip install 'xpnet[browser]'`); Playwright's own browser download is never used. Without
either the tests skip and say which is missing.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from serve_data import RUN, letter_png
from xpnet.train.serve.app import App
from xpnet.train.serve.handler import Server

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
X = [[(0.25, 0.15), (0.75, 0.85)], [(0.75, 0.15), (0.25, 0.85)]]  # an X, stroke by stroke, in pad fractions
T = [[(0.2, 0.18), (0.8, 0.18)], [(0.5, 0.18), (0.5, 0.85)]]
STALL_MS = 1000  # an answer later than this after the stroke ends is a stall, not a slow machine


@pytest.fixture(scope="module")
def browser():
    missing = pytest.fail if os.environ.get("XPNET_BROWSER_TESTS") == "required" else pytest.skip  # .ci/run sets it
    if not CHROMIUM.exists():
        missing("no Chromium at /usr/bin/chromium (apt-get install chromium)")
    try:
        import playwright.sync_api as playwright_api
    except ImportError:
        missing("playwright is not installed (pip install 'xpnet[browser]')")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    """A server over the test checkpoint, in a run folder given a history, a confusion matrix and
    the held-out groups' accuracy (groups.json, as `xpnet train` writes it for the letters)."""
    folder = tmp_path_factory.mktemp("serve") / "run"
    shutil.copytree(RUN, folder)
    history = [{"epoch": e, "loss": 2.0 / e, "accuracy": 0.3 * e, "val_loss": 2.2 / e, "val_accuracy": 0.28 * e}
               for e in (1, 2)]
    (folder / "history.json").write_text(json.dumps(history))
    groups = [{"name": "printed, unseen font families", "samples": 40, "accuracy": 0.9, "ece": 0.03},
              {"name": "handwriting, unseen writers", "samples": 20, "accuracy": 0.4, "ece": 0.1}]
    (folder / "groups.json").write_text(json.dumps(groups))
    counts = (np.eye(26, dtype=int) * 30 + 1).tolist()
    (folder / "confusion.json").write_text(json.dumps({"classes": [chr(65 + i) for i in range(26)], "counts": counts}))
    srv = Server(("127.0.0.1", 0), App(str(folder), "numpy"), log=lambda line: None)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def page(browser, url):
    context = browser.new_context(viewport={"width": 900, "height": 600}, has_touch=True)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.goto(url)
    page.problems = problems
    yield page
    context.close()
    assert not problems, problems  # no script error, no failed load, no blocked resource


def pad_point(page, x, y):
    box = page.locator("#pad").bounding_box()
    return box["x"] + x * box["width"], box["y"] + y * box["height"]


def draw_with_mouse(page, strokes, steps=12) -> list[float]:
    """Draws each stroke and waits for its answer; returns the ms each answer took."""
    took = []
    for stroke in strokes:
        page.mouse.move(*pad_point(page, *stroke[0]))
        page.mouse.down()
        for (ax, ay), (bx, by) in zip(stroke, stroke[1:]):
            for i in range(1, steps + 1):
                page.mouse.move(*pad_point(page, ax + (bx - ax) * i / steps, ay + (by - ay) * i / steps))
        page.mouse.up()
        took.append(wait_for_answer(page))
    return took


def draw_with_finger(page, strokes, steps=12):
    """Real touch input through the DevTools protocol: Chromium turns it into pointer events
    of pointerType 'touch', as a phone's screen does."""
    cdp = page.context.new_cdp_session(page)
    for stroke in strokes:
        points = [pad_point(page, ax + (bx - ax) * i / steps, ay + (by - ay) * i / steps)
                  for (ax, ay), (bx, by) in zip(stroke, stroke[1:]) for i in range(steps + 1)]
        for kind, (x, y) in [("touchStart", points[0])] + [("touchMove", p) for p in points[1:]]:
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        wait_for_answer(page)


def wait_for_answer(page):
    """Until the answer to the finished stroke is on the page; returns the ms it took."""
    page.wait_for_function("() => document.getElementById('timing').dataset.ms !== undefined")
    ms = float(page.evaluate("(() => { const t = document.getElementById('timing'); const ms = t.dataset.ms; "
                             "delete t.dataset.ms; return ms; })()"))
    assert ms < STALL_MS
    return ms


def api_answer(url, png: bytes) -> dict:
    host, port = url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", "/api/predict?top=5", png)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def shown(page) -> dict:
    """What the page shows: the answer, the bars (letter, text) and the 28x28 frame's grey levels."""
    letter = page.locator("#status .letter").inner_text()
    bars = [(li.locator("b").inner_text(), li.locator(".value").inner_text()) for li in page.locator("#top li").all()]
    frame = page.evaluate("Array.from(document.getElementById('seen').getContext('2d')"
                          ".getImageData(0, 0, 28, 28).data.filter((v, i) => i % 4 === 0))")
    return {"letter": letter, "bars": bars, "frame": np.array(frame).reshape(28, 28)}


def pad_png(page) -> bytes:
    return base64.b64decode(page.evaluate("document.getElementById('pad').toDataURL('image/png')").split(",")[1])


def assert_shows_the_api_answer(page, url):
    """The page shows what the API answers for the pad's own picture: letter, bars and frame."""
    want, got = api_answer(url, pad_png(page)), shown(page)
    assert got["letter"] == want["letter"]
    assert [name for name, _ in got["bars"]] == [want["letter"]] + [c for c, _ in want["runners_up"]]
    np.testing.assert_allclose(got["frame"], np.round(255 * np.array(want["input"])), atol=1)
    return want


def test_a_letter_drawn_with_the_mouse_is_read(page, url):
    draw_with_mouse(page, X)
    assert shown(page)["letter"] == "X"
    assert len(shown(page)["bars"]) == 5
    assert_shows_the_api_answer(page, url)
    assert shown(page)["frame"].max() == 255  # the frame shows ink


def test_a_letter_drawn_with_a_finger_is_read(page, url):
    draw_with_finger(page, T)
    assert shown(page)["letter"] == "T"
    assert_shows_the_api_answer(page, url)


def test_undo_takes_back_the_last_stroke_and_clear_empties_the_page(page, url):
    draw_with_mouse(page, X)
    page.click("#undo")
    wait_for_answer(page)
    assert_shows_the_api_answer(page, url)  # the one stroke left
    page.keyboard.press("Control+z")  # that one gone too: nothing left to read
    page.wait_for_function("() => document.querySelectorAll('#top li').length === 0")
    assert page.locator("#status").inner_text() == "Draw a letter." and ink_pixels(page) == 0
    draw_with_mouse(page, X)
    page.click("#clear")
    assert page.locator("#status").inner_text() == "Draw a letter." and page.locator("#top li").count() == 0
    assert ink_pixels(page) == 0


def test_the_pen_width_changes_the_stroke(page):
    inked = {}
    for width in ("4", "48"):
        page.locator("#width").fill(width)
        draw_with_mouse(page, [X[0]])
        inked[width] = ink_pixels(page)
        page.click("#clear")
    assert inked["48"] > 6 * inked["4"] > 0


def ink_pixels(page) -> int:
    return page.evaluate("""(() => {
        const c = document.getElementById('pad'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) n += d[i] < 128;
        return n; })()""")


def test_a_chosen_picture_is_read_at_full_size(page, url, tmp_path):
    (tmp_path / "L.png").write_bytes(letter_png())
    page.set_input_files("#file", str(tmp_path / "L.png"))
    page.wait_for_selector("#status .letter")
    assert shown(page)["letter"] == api_answer(url, letter_png())["letter"]


def test_a_dropped_picture_is_read_and_a_bad_one_is_one_line(page, url):
    drop = """([data, name, type]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, { type }));
        document.getElementById('pad').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true,
                                                                              cancelable: true }));
    }"""
    page.evaluate(drop, [base64.b64encode(letter_png()).decode(), "L.png", "image/png"])
    page.wait_for_selector("#status .letter")
    assert shown(page)["letter"] == api_answer(url, letter_png())["letter"]
    page.evaluate(drop, [base64.b64encode(b"not a picture").decode(), "notes.txt", "text/plain"])
    page.wait_for_selector("#status.error")
    error = page.locator("#status").inner_text()
    assert error.startswith("cannot read image in the request") and "\n" not in error
    assert page.locator("#top li").count() == 0
    assert [p for p in page.problems if "status of 400" in p]  # the browser saw the refusal too
    page.problems.clear()


def test_the_run_tab_draws_curves_groups_classes_and_confusion(page):
    page.click("#tab-run")
    page.wait_for_selector("table.confusion")
    assert page.locator("#draw-panel").is_hidden()
    assert page.locator("svg polyline").count() == 4  # loss and accuracy, train and held out
    text = page.locator("#run").inner_text()
    assert "Accuracy per held-out group" in text and "handwriting" in text and "40.0%" in text
    assert page.locator("table.confusion tr").count() == 27  # a header row and one per letter
    assert page.locator("table.confusion td").first.inner_text() == "31"
    assert "optimizer" in text and "momentum" in text  # the config
    page.click("#tab-draw")
    assert page.locator("#pad").is_visible() and page.locator("#run-panel").is_hidden()
