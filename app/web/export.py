"""A batch of names as a file to download: CSV (one row per name) or plain text (one per line).

    GET /api/names?n=20&seed=7&format=csv     # or with the header Accept: text/csv
"""

from __future__ import annotations

import csv
import io

from fastapi.responses import Response
from pydantic import BeforeValidator

from app.web.schemas import NamesResponse

MEDIA_TYPES = {"csv": "text/csv", "txt": "text/plain"}
CSV_COLUMNS = ["name", "novel", "nll_per_char", "estado", "nearest", "nearest_estado",
               "nearest_distance"]


def _format_name(value):
    """The ``format`` parameter; empty (as a form sends a blank field) is not given."""
    return None if value == "" else value


FORMAT_NAME = BeforeValidator(_format_name)


def wanted_format(format_param: str | None, accept: str) -> str:
    """``json``, ``csv`` or ``txt``: the ``format`` parameter, else the one the Accept header
    weighs highest (q, from the most specific range that names it; a tie goes to the range
    named first, then to JSON); JSON when the header accepts none of them."""
    if format_param:
        return format_param
    ranges = [_media_range(part) for part in accept.split(",") if part.strip()]
    best, chosen = (0.0, 0), "json"
    for fmt, media_type in {"json": "application/json", **MEDIA_TYPES}.items():
        matches = [(specificity, q, -position)
                   for position, (media, q) in enumerate(ranges)
                   if (specificity := _specificity(media, media_type)) is not None]
        if matches:
            _, q, first = max(matches)   # the most specific range decides its q
            if (q, first) > best:
                best, chosen = (q, first), fmt
    return chosen


def _media_range(part: str) -> tuple[str, float]:
    """("text/csv", 0.5) from " text/csv;q=0.5"; a q that is no number counts as 0."""
    media, *params = (p.strip() for p in part.split(";"))
    q = 1.0
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
    return media.lower(), q


def _specificity(media: str, media_type: str) -> int | None:
    """How closely a range names a type: 2 exactly, 1 as type/*, 0 as */*, None not at all."""
    if media == media_type:
        return 2
    if media == media_type.split("/")[0] + "/*":
        return 1
    return 0 if media == "*/*" else None


def as_csv(batch: NamesResponse) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in batch.names:
        writer.writerow([item.name, str(item.novel).lower(), f"{item.nll_per_char:.4f}",
                         item.estado or "", item.nearest.name, item.nearest.estado or "",
                         item.nearest.distance])
    return out.getvalue()


def as_text(batch: NamesResponse) -> str:
    return "".join(f"{item.name}\n" for item in batch.names)


def download(batch: NamesResponse, fmt: str) -> Response:
    """The batch as a UTF-8 attachment named after the model and the seed (so it can be
    regenerated: the same seed and options give the same names)."""
    body = as_csv(batch) if fmt == "csv" else as_text(batch)
    filename = f"toponimo-{batch.model}-{batch.seed}.{fmt}"
    return Response(body, media_type=f"{MEDIA_TYPES[fmt]}; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})
