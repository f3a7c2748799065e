"""The `xpnet serve` subcommand: its flags, and starting and stopping the server."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import warnings

from xpnet.backends import XpnetError
from xpnet.train.arguments import add_backend_flags


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="a local web page: draw a letter and watch the network read it")
    p.add_argument("checkpoint", help="a run folder or a .safetensors checkpoint")
    p.add_argument("--port", type=port, default=8000, help="TCP port to listen on; 0 picks a free one (default 8000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 lets "
                        "other machines in, and nothing asks them for a password)")
    add_backend_flags(p)
    p.set_defaults(handler=cmd_serve)


def port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: give a whole number from 0 to 65535")
    return int(text)


def cmd_serve(args) -> int:
    server = start(args.checkpoint, args.host, args.port, args.backend, args.device)
    host, bound = server.server_address[:2]
    print(f"serving {args.checkpoint} at {url(host, bound)}  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stopping = True
        print("stopped", flush=True)
    finally:
        server.stopping = True
        server.server_close()
    return 0


def start(checkpoint: str, host: str, port: int, backend_name=None, device=None):
    """Load the checkpoint, then listen: a bad checkpoint is said before any port is taken."""
    from xpnet.train.serve.app import App
    from xpnet.train.serve.handler import Server

    app = App(checkpoint, backend_name, device)
    if not is_loopback(host):
        warnings.warn(f"listening on {host}, so other machines can reach this page and its API; "
                      "give --host 127.0.0.1 to keep it to this machine")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise XpnetError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    try:
        return Server((host, port), app, family)
    except OSError as exc:
        raise XpnetError(f"cannot listen on {host} port {port}: {exc.strerror or exc}; "
                         "give another --port (0 picks a free one) or --host") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
