"""Serve the app with the committed weights on http://127.0.0.1:8000.

    python -m app [--host 127.0.0.1] [--port 8000] [--workers 1]
"""

from __future__ import annotations

import argparse

import uvicorn

# seconds uvicorn waits for open requests after SIGTERM before cancelling them; draining
# (app.web.scheduler) usually ends them well before, and Docker and Kubernetes kill at 10 s
GRACEFUL_SHUTDOWN_SECONDS = 3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes; the app is stateless, so add one per core")
    args = parser.parse_args(argv)
    uvicorn.run("app.main:app", host=args.host, port=args.port, workers=args.workers,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)


if __name__ == "__main__":
    main()
