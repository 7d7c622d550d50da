"""Load test: uvicorn on 127.0.0.1 with 1 then 2 workers, driven by wrk at concurrency 32.

    python benchmarks/load.py [--models models] [--duration 15] [--workers 1 2]

For each worker count, prints req/s, p50/p99 latency and errors for /api/names?n=10 and
/healthz, and the servers' memory (RSS). With one worker on a machine of two cores or more,
the server is pinned to core 0 and wrk to core 1, and the in-process time to sample 10 names
with the default model is measured on core 0 too, just before and just after the run (this
shared machine's speed drifts): the compute limit is 1000 / that time, and the share of it
reached is printed. With more workers wrk shares their cores, so no share is claimed.
Targets (issue 11): 0 errors; /api/names >= 75% of the compute limit; p99 <= 2x p50;
RSS <= 150 MB per worker with all models loaded. Loopback only; needs Debian's `wrk`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.web.registry import DEFAULT_MODEL, MODELS_DIR_ENV  # noqa: E402
from benchmarks.sampling_speed import median_ms  # noqa: E402

ENDPOINTS = ["/api/names?n=10", "/healthz"]
SERVER_CORE, WRK_CORE = 0, 1
UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def on_core(core: int | None) -> Iterator[None]:
    """Run the body on ``core`` alone (None: wherever it runs now), then give back the earlier
    affinity: every process started later inherits this one's, so a pin left in place would
    put the unpinned servers and their wrk on that core too."""
    if core is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def start_server(models: Path, workers: int, port: int, core: int | None = None
                 ) -> subprocess.Popen:
    """uvicorn in its own process group (so all its workers stop together), ready to serve;
    pinned to ``core`` if given."""
    env = {**os.environ, MODELS_DIR_ENV: str(models)}
    pin = [] if core is None else ["taskset", "-c", str(core)]
    process = subprocess.Popen(
        [*pin, sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port",
         str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                # every worker loads the models itself: give the others a moment too
                time.sleep(2 * workers)
                return process
        except OSError:
            time.sleep(0.2)
    stop_server(process)
    raise SystemExit("the server did not become ready within 60 s")


def stop_server(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def rss_mb(pid: int) -> dict[int, float]:
    """Resident memory of a process and its children, in MB."""
    pids = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            pids.append(int(stat.parent.name))
    out = {}
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        out[p] = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024
    return out


def run_wrk(url: str, duration: int, concurrency: int, core: int | None = None) -> WrkResult:
    pin = [] if core is None else ["taskset", "-c", str(core)]
    result = subprocess.run([*pin, "wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout",
                             "5s", "--latency", url], capture_output=True, text=True,
                            timeout=duration + 30, check=True)
    text = result.stdout

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()
        return float(value) * UNITS_MS[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        text)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(g) for g in sockets.groups()) if sockets else 0)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    return WrkResult(rps, latency("50"), latency("99"), errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models",
                        help="folder of checkpoints to serve (default: models/)")
    parser.add_argument("--duration", type=int, default=15, help="seconds per endpoint")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")

    from threadpoolctl import threadpool_limits

    from app.lm.base import load_model

    threadpool_limits(limits=1, user_api="blas")
    model = load_model(args.models / f"{DEFAULT_MODEL}.npz")
    median_ms(model, 10, 5)  # warm-up

    pinning = (os.cpu_count() or 1) >= 2

    def in_process_ms() -> float:
        """Wall ms for 10 names on the pinned server's core; ~0.5 s: long enough to ride out
        a blip."""
        with on_core(SERVER_CORE if pinning else None):
            return median_ms(model, 10, 100)[0]

    print(f"in-process median for 10 names ({DEFAULT_MODEL}): {in_process_ms():.2f} ms; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"wrk: 1 thread, {args.concurrency} connections, {args.duration} s per endpoint; "
          f"this shared machine's speed drifts, so each /api/names run is compared with the "
          f"in-process time measured just before and just after it (server idle)")

    for workers in args.workers:
        pinned = pinning and workers == 1
        port = free_port()
        server = start_server(args.models, workers, port, SERVER_CORE if pinned else None)
        try:
            print(f"\n{workers} worker(s)" + (f", pinned to core {SERVER_CORE}, wrk on core "
                                              f"{WRK_CORE}:" if pinned else ", unpinned:"))
            for endpoint in ENDPOINTS:
                compute = endpoint.startswith("/api/names")
                before = in_process_ms() if compute and pinned else 0.0
                r = run_wrk(f"http://127.0.0.1:{port}{endpoint}", args.duration,
                            args.concurrency, WRK_CORE if pinned else None)
                share = ""
                if compute and pinned:
                    ms = (before + in_process_ms()) / 2
                    limit = 1000 / ms
                    share = (f", {100 * r.requests_per_second / limit:.0f}% of the compute "
                             f"limit {limit:.0f} req/s ({ms:.2f} ms in process)")
                elif compute:
                    share = " (no share of the compute limit: wrk shares the workers' cores)"
                print(f"  {endpoint:<18} {r.requests_per_second:8.1f} req/s  p50 {r.p50_ms:7.2f} ms"
                      f"  p99 {r.p99_ms:7.2f} ms (p99/p50 {r.p99_ms / r.p50_ms:.1f})  "
                      f"errors {r.errors}{share}")
            memory = rss_mb(server.pid)
            print("  RSS: " + ", ".join(f"{mb:.0f} MB" for mb in memory.values())
                  + f" (master first; total {sum(memory.values()):.0f} MB)")
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
