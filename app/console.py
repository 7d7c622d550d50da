"""Writing a CLI's results to standard output: a reader that stops early (``| head``) ends the
command quietly, and a write that fails (a full disk) is one line on stderr, never a traceback.

    return write_lines(names, "the names")   # the exit status: 0, or 1 if the write failed

Standard library only and importing nothing of app, so any entry point may use it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable


def write_lines(lines: Iterable[str], what: str) -> int:
    """Print each line; the exit status (0, or 1 when stdout could not take them)."""
    try:
        for line in lines:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:   # the reader has all it wanted
        _silence_stdout()
        return 0
    except OSError as exc:
        _silence_stdout()
        print(f"error: cannot write {what}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's own flush at exit cannot fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
