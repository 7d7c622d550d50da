"""Serve the app with the committed weights on http://127.0.0.1:8000.

    python -m app [--host 127.0.0.1] [--port 8000] [--workers 1]

The flags and the settings read from the environment ($TOPONIMO_MODELS_DIR,
$TOPONIMO_DEADLINE_SECONDS) are checked before uvicorn starts: a bad one exits with code 2.
"""

from __future__ import annotations

import argparse
import math
import os
import socket

import uvicorn

from app.flags import Range, parse_checked
from app.web.registry import MODELS_DIR_ENV, models_dir
from app.web.scheduler import deadline_seconds

# seconds uvicorn waits for open requests after SIGTERM before cancelling them; draining
# (app.web.scheduler) usually ends them well before, and Docker and Kubernetes kill at 10 s
GRACEFUL_SHUTDOWN_SECONDS = 3
RANGES = {"port": Range(1, 65535), "workers": Range(1, math.inf, high_open=True)}


def check_environment(parser: argparse.ArgumentParser) -> None:
    """``parser.error`` (exit 2) for a setting the workers would refuse only after starting."""
    try:
        deadline_seconds()
    except ValueError as exc:
        parser.error(str(exc))
    folder = models_dir()
    if not folder.is_dir():
        parser.error(f"no such models folder: {folder} (${MODELS_DIR_ENV}, else models/, names "
                     f"the folder of the *.npz checkpoints to serve)")
    if not os.access(folder, os.R_OK | os.X_OK):
        parser.error(f"cannot read the models folder {folder} (permission denied)")


def check_host(parser: argparse.ArgumentParser, host: str, port: int) -> None:
    """``parser.error`` (exit 2) for a --host uvicorn could not listen on, before any model
    loads; an empty one would listen on every interface, not on one."""
    if not host.strip():
        parser.error("--host must be an address or a host name, such as 127.0.0.1 (or 0.0.0.0 "
                     "for every interface)")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        parser.error(f"--host: cannot listen on {host!r} ({exc})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000,
                        help=f"port, in {RANGES['port']} (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes, 1 or more; the app is stateless, so add one per "
                             "core (default: %(default)s)")
    args = parse_checked(parser, argv, RANGES)
    check_host(parser, args.host, args.port)
    check_environment(parser)
    uvicorn.run("app.main:app", host=args.host, port=args.port, workers=args.workers,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)


if __name__ == "__main__":
    main()
