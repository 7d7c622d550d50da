"""Abuse benchmark (issue 11): what a few heavy requests do to a cheap one, and to a SIGTERM.

    python benchmarks/abuse.py [--models models] [--duration 10]

Starts `python -m app` (one worker) on 127.0.0.1, pinned to core 0 while this client runs on
core 1 (when there are two), and prints:
  1. the latency of a cheap GET /api/names?n=1 sent right after 40 clients that asked for
     model=mezcla&n=100&temperature=0.01 hung up after 2 s (goal <= 1 s), and how long the
     server kept working for them (it should drop them at once);
  2. the same behind 50 such clients that stay connected;
  3. cheap-request p50/p99/max while 256 connections loop on n=100&temperature=5 for
     --duration seconds, retrying at once as wrk does (goal p99 <= 1 s, 0 timeouts; 503s
     counted apart), and how long the server kept working after the load stopped;
  4. the same with clients that wait the Retry-After of a 503 before asking again;
  5. the exit time on SIGTERM with 20 heavy requests queued (goal <= 5 s).
Loopback only; every phase is bounded in requests and seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.web.registry import MODELS_DIR_ENV  # noqa: E402
from app.web.scheduler import HEAVY_CAPACITY  # noqa: E402
from benchmarks.load import free_port  # noqa: E402

HEAVY_ABANDONED = "/api/names?model=mezcla&n=100&temperature=0.01"
HEAVY_LOOP = "/api/names?n=100&temperature=5"
CHEAP = "/api/names?n=1"
TIMEOUT = 10.0   # seconds a client waits for an answer before counting a timeout


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)   # seconds, 200s only
    busy: int = 0          # 503s
    timeouts: int = 0
    other: int = 0         # other statuses or broken connections

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    def summary(self) -> str:
        ms = [1000 * self.percentile(q) for q in (0.5, 0.99)]
        top = 1000 * max(self.latencies, default=float("nan"))
        return (f"{len(self.latencies)} ok (p50 {ms[0]:.0f} ms, p99 {ms[1]:.0f} ms, max {top:.0f} "
                f"ms), {self.busy} x 503, {self.timeouts} timeouts, {self.other} other")


class Connection:
    """One keep-alive HTTP/1.1 connection, enough for this app's GET answers."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        status = int((await self.reader.readline()).split()[1])
        length, keep = 0, True
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                keep = False
        body = await self.reader.readexactly(length)
        if not keep:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def timed_get(conn: Connection, path: str, tally: Tally) -> int | None:
    """GET ``path``, adding the outcome to ``tally``; the status, or None without one."""
    start = time.perf_counter()
    try:
        status, body = await asyncio.wait_for(conn.get(path), TIMEOUT)
    except TimeoutError:
        tally.timeouts += 1
        conn.close()
        return None
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
        tally.other += 1
        conn.close()
        return None
    if status == 200:
        tally.latencies.append(time.perf_counter() - start)
    elif status == 503:
        tally.busy += 1
    else:
        tally.other += 1
    return status


def readiness(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            return json.load(r)
    except urllib.error.HTTPError as err:   # 503 while saturated or shutting down
        return json.load(err)


async def idle_after(port: int, limit: float = 30.0) -> float:
    """Seconds until the server has no sampling request in progress."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if (await asyncio.to_thread(readiness, port))["busy"] == 0:
            return time.perf_counter() - start
        await asyncio.sleep(0.05)
    return float("inf")


async def cheap_latency(port: int) -> float:
    tally = Tally()
    await timed_get(Connection(port), CHEAP, tally)
    return tally.latencies[0] if tally.latencies else float("nan")


async def abandoned(port: int, _server=None, clients: int = 40, patience: float = 2.0) -> None:
    conns = [Connection(port) for _ in range(clients)]
    tasks = [asyncio.create_task(c.get(HEAVY_ABANDONED)) for c in conns]
    await asyncio.sleep(patience)
    for task, conn in zip(tasks, conns, strict=True):
        task.cancel()
        conn.close()
    start = time.perf_counter()
    cheap = await cheap_latency(port)
    idle = await idle_after(port)
    print(f"1. {clients} heavy clients hung up after {patience:g} s; then GET {CHEAP}: "
          f"{1000 * cheap:.0f} ms (goal <= 1000); server idle {idle:.2f} s after the hang-up "
          f"(measured from {time.perf_counter() - start:.2f} s of probing)")


async def connected(port: int, _server=None, clients: int = 50) -> None:
    heavy = Tally()
    tasks = [asyncio.create_task(timed_get(Connection(port), HEAVY_ABANDONED, heavy))
             for _ in range(clients)]
    await asyncio.sleep(0.5)
    cheap = await cheap_latency(port)
    await asyncio.gather(*tasks)
    print(f"2. behind {clients} connected heavy clients, GET {CHEAP}: {1000 * cheap:.0f} ms; "
          f"heavy: {heavy.summary()}")


async def flood(port: int, duration: float, backoff: bool, connections: int = 256,
                probes: int = 4) -> None:
    """Heavy clients loop as wrk does (``backoff``: but wait Retry-After after a 503)."""
    stop = time.perf_counter() + duration
    heavy, cheap = Tally(), Tally()

    async def loop(path: str, tally: Tally, pause: float, wait_503: float) -> None:
        conn = Connection(port)
        while time.perf_counter() < stop:
            status = await timed_get(conn, path, tally)
            await asyncio.sleep(wait_503 if status == 503 else pause)
        conn.close()

    await asyncio.gather(*(loop(HEAVY_LOOP, heavy, 0, float(backoff)) for _ in range(connections)),
                         *(loop(CHEAP, cheap, 0.05, 0.05) for _ in range(probes)))
    idle = await idle_after(port)
    how = "waiting Retry-After (1 s) after a 503" if backoff else "retrying at once, as wrk does"
    print(f"3{'b' if backoff else 'a'}. {connections} connections on {HEAVY_LOOP}, {how}, for "
          f"{duration:g} s; {probes} probes on {CHEAP}:\n   cheap: {cheap.summary()} "
          f"(goal p99 <= 1000 ms, 0 timeouts)\n   heavy: {heavy.summary()}\n"
          f"   server idle {idle:.2f} s after the load stopped")


async def sigterm(server: subprocess.Popen, port: int, queued: int = 20) -> None:
    outcomes = Tally()
    tasks = [asyncio.create_task(timed_get(Connection(port), HEAVY_ABANDONED, outcomes))
             for _ in range(queued)]
    await asyncio.sleep(0.5)
    start = time.perf_counter()
    server.send_signal(signal.SIGTERM)
    await asyncio.to_thread(server.wait, 30)
    seconds = time.perf_counter() - start
    await asyncio.gather(*tasks)
    print(f"5. SIGTERM with {queued} heavy requests sent (at most {HEAVY_CAPACITY} in progress, "
          f"the rest refused at once): exited in {seconds:.2f} s "
          f"(goal <= 5), exit code {server.returncode}; the clients got: {outcomes.summary()}")


def start(models: Path, port: int, pin: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "app", "--port", str(port)]
    if pin:
        command = ["taskset", "-c", "0", *command]
    env = {**os.environ, MODELS_DIR_ENV: str(models)}
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if readiness(port)["ready"]:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not become ready within 60 s")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models",
                        help="folder of checkpoints to serve (default: models/)")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of the c=256 flood, 1..60 (default: %(default)s)")
    parser.add_argument("--phases", default="12345",
                        help="which of the phases below to run (default: %(default)s)")
    args = parser.parse_args()
    if not 1 <= args.duration <= 60:
        parser.error(f"--duration must be from 1 to 60 seconds, got {args.duration}")
    pin = (os.cpu_count() or 1) >= 2
    if pin:
        os.sched_setaffinity(0, {1})
    print(f"server: python -m app, 1 worker{' on core 0' if pin else ''}; client: this process"
          f"{' on core 1' if pin else ''}; load average {os.getloadavg()[0]:.1f}")
    phases = {"1": abandoned, "2": connected,
              "3": lambda port, _: flood(port, args.duration, backoff=False),
              "4": lambda port, _: flood(port, args.duration, backoff=True),
              "5": lambda port, server: sigterm(server, port)}
    for key in args.phases:
        port = free_port()
        server = start(args.models, port, pin)
        try:
            asyncio.run(phases[key](port, server))
        finally:
            stop(server)


if __name__ == "__main__":
    main()
