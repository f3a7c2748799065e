"""The HTTP side of `xpnet serve`: a route table, bodies read within a cap, errors as one line of JSON.

The standard library's ThreadingHTTPServer answers each connection on its own thread. A
request is routed by its path alone (the query is parsed, never used as a path); anything a
handler raises becomes a JSON error and the server goes on serving.
"""

from __future__ import annotations

import json
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from xpnet.train.arguments import one_line
from xpnet.train.serve.app import ASSETS, MAX_BODY, App, RequestError
from xpnet.version import __version__

DRAIN_LIMIT = 8 * MAX_BODY  # an oversized body is read and dropped up to this, so its sender sees the 413
PAGE_POLICY = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'"


def too_large(n: int) -> RequestError:
    return RequestError(413, f"the body is {n} bytes; at most {MAX_BODY} ({MAX_BODY // 2**20} MiB) are read: "
                             "send a smaller picture")


class Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer that carries the App its handlers share."""

    daemon_threads = True  # Ctrl-C does not wait for a client that holds its connection open
    request_queue_size = 128  # connections waiting to be accepted; socketserver's 5 reset a burst of 50
    stopping = False  # set on Ctrl-C: a handler thread torn down with the process is not an error

    def __init__(self, address, app: App, family=None, log=None):
        self.app = app
        self.address_family = family or self.address_family  # IPv6 for an address such as ::1
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        super().__init__(address, Handler)

    def handle_error(self, request, client_address) -> None:
        """An error that escaped a request's own handling: one line in the log, not socketserver's
        traceback. Nothing for a client that left (reset the connection, or went quiet) or while
        stopping (a daemon thread may die mid-answer at exit): neither is the server's fault."""
        exc = sys.exc_info()[1]
        if self.stopping or isinstance(exc, (ConnectionError, TimeoutError)):
            return
        self.log(f"xpnet: warning: a request from {client_address[0]} failed: {type(exc).__name__}: {exc}")


class Handler(BaseHTTPRequestHandler):
    server_version = f"xpnet/{__version__}"
    protocol_version = "HTTP/1.1"  # keep-alive: the page's repeated predictions reuse one connection
    timeout = 30  # seconds a client may stall mid-request before its thread is freed
    _unread = 0  # bytes of the current request's body not read yet
    _said = ""  # the one line a refusal answered, for the server's log
    path = ""  # set once the request line parses: a refusal of one that did not (414, 505) has none

    ROUTES = {  # path -> {method: handler method name}
        **{path: {"GET": "page"} for path in ASSETS},
        "/api/predict": {"POST": "predict"}, "/api/run": {"GET": "run"},
    }

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_HEAD(self):
        self.route("HEAD")

    def do_PUT(self):
        self.route("PUT")

    def do_DELETE(self):
        self.route("DELETE")

    def do_PATCH(self):
        self.route("PATCH")

    def do_OPTIONS(self):
        self.route("OPTIONS")

    def route(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            methods = self.ROUTES.get(url.path)
            if methods is None:
                raise RequestError(404, f"no page {url.path[:80]!r}: the page is / and the API is "
                                        "POST /api/predict and GET /api/run")
            if method not in methods:
                raise RequestError(405, f"{url.path} takes {' or '.join(methods)}, not {method}")
            getattr(self, methods[method])(url)
        except RequestError as exc:
            self._said = one_line(str(exc))
            self.send_json(exc.status, {"error": self._said}, methods)
        except (ConnectionError, TimeoutError):  # the client left or stalled: no one to answer
            self.close_connection = True
            return
        except Exception as exc:  # a bug in xpnet: the client gets one line, the log the traceback
            traceback.print_exc()
            self.close_connection = True  # whatever was half-sent, this connection ends with the 500
            self.send_json(500, {"error": f"internal error ({exc.__class__.__name__}); the server log has the details"})
        self.drain()

    def page(self, url) -> None:
        body, kind = self.server.app.assets[url.path]
        self.send(200, body, kind, {"Content-Security-Policy": PAGE_POLICY})

    def run(self, url) -> None:
        self.send_json(200, self.server.app.run)

    def predict(self, url) -> None:
        top = self.server.app.check_top(parse_qs(url.query).get("top", [None])[-1])
        self.send_json(200, self.server.app.predict(self.body(), top))

    def body(self) -> bytes:
        """The request body, at most MAX_BODY bytes; the length must be declared up front."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # its body is still on the line, in a form not read here
            raise RequestError(411, "send the picture with a Content-Length header, not chunked")
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise RequestError(411, "send the picture with a Content-Length header")
        if not _number(length):
            self.close_connection = True
            raise RequestError(400, f"Content-Length {length[:20]!r} is not a number of bytes")
        n = int(length)
        if n > MAX_BODY:
            raise too_large(n)
        data = self.rfile.read(n)
        self._unread = 0
        if len(data) < n:
            self.close_connection = True
            raise RequestError(400, f"the body ended after {len(data)} of its {n} bytes")
        return data

    def drain(self) -> None:
        """Read and drop a body no handler read (a 413, a wrong path), so a client that sends its
        whole body before reading the answer gets the answer, not a reset connection; past
        DRAIN_LIMIT the connection is closed instead."""
        n = self._unread
        self._unread = 0
        if n <= 0:
            return
        self.close_connection = True
        if n > DRAIN_LIMIT:
            return
        try:
            while n > 0:
                chunk = self.rfile.read(min(n, 2**16))
                if not chunk:
                    break
                n -= len(chunk)
        except OSError:
            pass

    def parse_request(self) -> bool:
        """The standard parsing, then the body length is noted so drain() knows what is left."""
        ok = super().parse_request()
        length = self.headers.get("Content-Length", "0") if ok else "0"
        self._unread = int(length) if _number(length) else 0
        return ok

    def handle_expect_100(self) -> bool:
        """A client that asks before sending a large body (curl does, past 1 MB) hears the 413 then."""
        length = self.headers.get("Content-Length", "0").strip()
        if _number(length) and int(length) > MAX_BODY:
            self.close_connection = True
            self._said = str(too_large(int(length)))
            self.send_json(413, {"error": self._said})
            return False
        return super().handle_expect_100()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (a request line over 64 KiB, an HTTP version or a
        method it does not know, too many headers) as one line of JSON like every other; they
        were an HTML page, or, for 414 and 505, nothing at all (logging one read a `path` that
        the unparsed request never set)."""
        self.close_connection = True
        self._said = one_line(message or HTTPStatus(code).phrase)
        self.send_json(code, {"error": self._said})

    def send_json(self, status: int, obj, allow=None) -> None:
        headers = {"Allow": ", ".join(allow)} if status == 405 and allow else {}
        self.send(status, json.dumps(obj, separators=(",", ":")).encode(), "application/json", headers)

    def send(self, status: int, body: bytes, kind: str, headers: dict | None = None) -> None:
        if self._unread > 0:  # whatever is drained, this connection ends after the answer
            self.close_connection = True
        self.send_response(status)
        for name, value in {"Content-Type": kind, "Content-Length": str(len(body)), "Cache-Control": "no-store",
                            "X-Content-Type-Options": "nosniff", **(headers or {})}.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_request(self, code="-", size="-") -> None:
        """Only refusals are logged, one line each: a page drawing letters makes a request a stroke."""
        try:
            status = int(code)
        except (TypeError, ValueError):
            return
        if status >= 400:
            why, self._said = f": {self._said}" if self._said else "", ""
            self.server.log(f"xpnet serve: {status} {self.command or '-'} {one_line(urlsplit(self.path).path[:80])}{why}")

    def log_error(self, format, *args) -> None:
        if format.startswith("Request timed out"):  # an idle keep-alive connection closed: routine
            return
        self.server.log(f"xpnet serve: {one_line(format % args)}")


def _number(text) -> bool:
    """A header that is a whole number in ASCII digits: str.isdigit also takes "²" and "３",
    which int() then refuses."""
    text = (text or "").strip()
    return text.isascii() and text.isdigit()
