"""How every CLI checks its flags: one Range per flag, one message for a value outside it.

    args = parse_checked(parser, argv, {"port": Range(1, 65535)})   # exit 2 if --port is not

Standard library only and importing nothing of app, so any floor may use it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass


class FlagError(ValueError):
    """A flag's value cannot be used; the message names the flag, the value and what is allowed."""


@dataclass(frozen=True)
class Range:
    """An interval of allowed values, closed unless said otherwise."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:  # NaN is in no range
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return bool(above and below)

    def __str__(self) -> str:
        return (f"{'(' if self.low_open else '['}{self.low}, "
                f"{self.high}{')' if self.high_open else ']'}")


SEED = Range(0, 2**32 - 1)   # every CLI's --seed, the range the web form and API take too


def flag(name: str) -> str:
    """The flag of a field: ``batch_size`` is ``--batch-size``."""
    return "--" + name.replace("_", "-")


def check_range(name: str, value: float, allowed: Range) -> None:
    """Raise FlagError unless ``value`` of the flag for field ``name`` is in ``allowed``."""
    if value not in allowed:
        raise FlagError(f"{flag(name)} must be in {allowed}, got {value}")



def parse_checked(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                  ranges: dict[str, Range]) -> argparse.Namespace:
    """``parser.parse_args(argv)`` with every flag of ``ranges`` that has a value checked:
    the first outside its range is ``parser.error`` (exit 2), before the CLI does anything."""
    args = parser.parse_args(argv)
    try:
        for name, allowed in ranges.items():
            if getattr(args, name) is not None:
                check_range(name, getattr(args, name), allowed)
    except FlagError as exc:
        parser.error(str(exc))
    return args
