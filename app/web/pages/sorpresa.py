"""Per-letter surprise as the pages draw it: each character, its probability in words, and a
CSS class for its shade (``sorpresa-0`` light ... ``sorpresa-5`` dark; no inline style)."""

from __future__ import annotations

import math

from app.web.schemas import ScoreResponse

MAX_SURPRISE = 5.0   # nats: a character this unexpected (p <= 0.7%) gets the darkest cell
SHADES = 6


def cell_class(probability: float) -> str:
    """The shade of one character's cell: the less expected, the darker."""
    surprise = min(-math.log(max(probability, 1e-12)) / MAX_SURPRISE, 1.0)
    return f"sorpresa-{min(int(surprise * SHADES), SHADES - 1)}"


def percent(probability: float) -> str:
    """"37 %", "0.4 %", "< 0.1 %": short enough to sit under a letter."""
    value = 100 * probability
    if value >= 10:
        return f"{value:.0f} %"
    return f"{value:.1f} %" if value >= 0.1 else "< 0.1 %"


def cells(scored: ScoreResponse) -> list[dict]:
    """One cell per character and one for the end of the name."""
    out = [{"char": "␣" if c.char == " " else c.char, "spoken": "espacio" if c.char == " " else c.char,
            "probability": percent(c.probability), "css": cell_class(c.probability)}
           for c in scored.characters]
    out.append({"char": "⏎", "spoken": "fin del nombre", "end": True,
                "probability": percent(scored.end_probability),
                "css": cell_class(scored.end_probability)})
    return out
