"""The map of Mexico's 32 states as inline SVG: to choose a state, to mark states, to shade them.

The shapes are ``static/mexico.svg`` from the npm package ``@svg-maps/mexico`` 2.0.0 (Victor
Cazanave, after MapSVG), CC BY 4.0, kept unchanged beside its licence (``static/mexico.LICENSE.md``).
Each state is drawn with classes only (the page's CSS colours them; no inline style), and a
state that can be chosen is an SVG link: focusable, opened with Enter, and a plain URL that
works without JavaScript.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from app.paths import STATIC_DIR

SVG_PATH = STATIC_DIR / "mexico.svg"
CREDIT = ("Mapa: @svg-maps/mexico (Victor Cazanave, a partir de MapSVG), licencia CC BY 4.0")

# the package's ids -> INEGI's two-digit state codes
INEGI_CODES = {
    "agu": "01", "bcn": "02", "bcs": "03", "cam": "04", "coa": "05", "col": "06", "chp": "07",
    "chh": "08", "cmx": "09", "dur": "10", "gua": "11", "gro": "12", "hid": "13", "jal": "14",
    "mex": "15", "mic": "16", "mor": "17", "nay": "18", "nle": "19", "oax": "20", "pue": "21",
    "que": "22", "roo": "23", "slp": "24", "sin": "25", "son": "26", "tab": "27", "tam": "28",
    "tla": "29", "ver": "30", "yuc": "31", "zac": "32",
}


@dataclass(frozen=True)
class Shape:
    code: str    # INEGI code
    d: str       # the SVG path


@functools.cache
def shapes() -> tuple[str, tuple[Shape, ...]]:
    """The viewBox and the 32 outlines, read once."""
    text = SVG_PATH.read_text("utf-8")
    view_box = re.search(r'viewBox="([^"]+)"', text).group(1)
    found = re.findall(r'<path\s+id="(\w+)"\s+aria-label="[^"]*"\s+d="([^"]+)"', text)
    return view_box, tuple(Shape(INEGI_CODES[i], d) for i, d in found)


def mapa_svg(names: dict[str, str], title: str, svg_id: str,
             link: Callable[[str], str] | None = None, classes: dict[str, str] | None = None,
             notes: dict[str, str] | None = None, current: str | None = None) -> str:
    """The map as SVG markup.

    names: INEGI code -> state name (as the data spells it); states missing here are drawn
      greyed and are never links.
    link: state name -> URL; each named state becomes a link (``current`` is marked so).
    classes: state name -> CSS class of its shape (``marcado``, ``nivel-3``...).
    notes: state name -> text added to its accessible name ("Oaxaca: 95 %").
    """
    view_box, outlines = shapes()
    classes, notes = classes or {}, notes or {}
    out = [f'<svg class="mapa" id="{svg_id}" viewBox="{view_box}" role="group" '
           f'aria-labelledby="{svg_id}-titulo" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="{svg_id}-titulo">{escape(title)}</title>']
    for shape in outlines:
        name = names.get(shape.code)
        if name is None:
            out.append(f'<path class="estado fuera" d="{shape.d}"/>')
            continue
        label = escape(f"{name}: {notes[name]}" if name in notes else name)
        css = " ".join(["estado", classes.get(name, "")]).strip()
        path = f'<path class="{css}" d="{shape.d}"><title>{label}</title></path>'
        if link is None:
            out.append(path)
        else:
            here = ' aria-current="true"' if name == current else ""
            out.append(f'<a href="{escape(link(name))}" aria-label="{label}" data-estado='
                       f'"{escape(name)}"{here}>{path}</a>')
    out.append("</svg>")
    return "\n".join(out)
