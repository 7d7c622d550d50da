"""Another commit's code beside this tree's, for the benchmarks that compare them (``--ref``).

    tree = export("HEAD~1"); worker = Worker(Path(__file__), tree); answer = worker.ask("...")

A commit's ``app/`` is exported with ``git archive`` (beside this tree's data), and each tree is
imported in a worker process of its own: two versions of the package never share an interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def export(ref: str) -> Path:
    """``app/`` as it is at ``ref``, with this tree's data, in a temporary directory."""
    path = Path(tempfile.mkdtemp(prefix="toponimo-ref-"))
    archive = subprocess.run(["git", "archive", ref, "app"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(path)], input=archive, check=True)
    (path / "data").symlink_to(ROOT / "data")
    return path


class Worker:
    """``script --worker`` run on the code tree at ``path`` (first on its import path): each line
    written to it is answered with one line of JSON. ``env`` changes the worker's environment
    from this process's: a variable given None is unset (for what a library reads once, when
    the process starts, such as OMP_WAIT_POLICY)."""

    def __init__(self, script: Path, path: Path, env: Mapping[str, str | None] | None = None):
        changed = {**os.environ, "PYTHONPATH": str(path), **(env or {})}
        env = {name: value for name, value in changed.items() if value is not None}
        self.process = subprocess.Popen([sys.executable, str(script), "--worker"], cwd=path,
                                        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)

    def ask(self, line: str):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the worker exited with code {self.process.wait()}")
        return json.loads(answer)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()
