"""`xpnet serve` under load: a burst of concurrent requests, the server's memory over many,
and (with --browser) the time from a drawn stroke's end to its answer on the page.

    python bench/serve.py RUN                      # 50 at once, then 10,000 requests with RSS samples
    python bench/serve.py RUN --browser 20         # and 20 letters drawn in headless Chromium

The server is a separate `xpnet serve` process, so the memory measured (VmRSS from /proc) is
its own. One request in ten of the 10,000 is not a picture, so refusals are in the mix (the
server's log of them is dropped).
"""

from __future__ import annotations

import argparse
import http.client
import io
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a run folder or checkpoint to serve")
    p.add_argument("--requests", type=int, default=10_000, help="requests in the memory run (default 10000)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients in the memory run (default 8)")
    p.add_argument("--burst", type=int, default=50, help="requests sent at once (default 50)")
    p.add_argument("--browser", type=int, default=0, help="letters to draw in headless Chromium (default 0: none)")
    args = p.parse_args()
    proc = subprocess.Popen([sys.executable, "-m", "xpnet", "serve", args.run, "--port", "0", "--backend", "numpy"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    try:
        port = int(proc.stdout.readline().split(":")[2].split("/")[0])
        png = letter_png()
        burst(port, png, args.burst)
        soak(port, png, proc.pid, args.requests, args.clients)
        if args.browser:
            browser(port, args.browser)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def letter_png() -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(img).line([(80, 40), (80, 240), (210, 240)], fill=0, width=20)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def post(conn, body) -> int:
    conn.request("POST", "/api/predict", body)
    res = conn.getresponse()
    res.read()
    return res.status


def burst(port: int, png: bytes, n: int) -> None:
    gate = threading.Barrier(n)

    def one(_):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        gate.wait()
        t = time.perf_counter()
        try:
            return post(conn, png), time.perf_counter() - t
        except OSError as exc:
            return exc.__class__.__name__, time.perf_counter() - t
        finally:
            conn.close()

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    ok = sum(status == 200 for status, _ in results)
    slowest = max(t for _, t in results)
    print(f"burst: {n} requests at once, {ok} answered 200, {n - ok} failed; the last answered after {slowest * 1e3:.0f} ms")


def soak(port: int, png: bytes, pid: int, n: int, clients: int) -> None:
    counts = {"sent": 0, 200: 0, 400: 0, "other": 0}
    lock = threading.Lock()
    print(f"{'requests':>9} {'RSS MiB':>8}")
    print(f"{0:>9} {rss_mib(pid):>8.1f}")

    def client(_):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if counts["sent"] >= n:
                    break
                counts["sent"] += 1
                i = counts["sent"]
            status = post(conn, b"not a picture" if i % 10 == 0 else png)
            with lock:
                counts[status if status in (200, 400) else "other"] += 1
                if i % (n // 10) == 0:
                    print(f"{i:>9} {rss_mib(pid):>8.1f}", flush=True)
        conn.close()

    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    took = time.perf_counter() - t
    print(f"soak: {n} requests from {clients} clients in {took:.1f} s ({n / took:.0f}/s): "
          f"{counts[200]} pictures read, {counts[400]} refused (not a picture), {counts['other']} other")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def browser(port: int, letters: int) -> None:
    sys.path.insert(0, str(REPO))
    from playwright.sync_api import sync_playwright

    from tests.test_serve_page import ARGS, CHROMIUM, X, draw_with_mouse

    times = []
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = chromium.new_page(viewport={"width": 900, "height": 600})
        page.goto(f"http://127.0.0.1:{port}/")
        for _ in range(letters):
            times += draw_with_mouse(page, X)
            page.click("#clear")
        chromium.close()
    q = statistics.quantiles(times, n=10)
    print(f"browser: {len(times)} strokes; answer shown after the stroke ended: median {statistics.median(times):.0f} ms, "
          f"90th percentile {q[-1]:.0f} ms, slowest {max(times):.0f} ms")


if __name__ == "__main__":
    main()
