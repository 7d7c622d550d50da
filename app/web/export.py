"""A batch of names as a file to download: CSV (one row per name) or plain text (one per line).

    GET /api/names?n=20&seed=7&format=csv     # or with the header Accept: text/csv
"""

from __future__ import annotations

import csv
import io

from fastapi.responses import Response

from app.web.schemas import NamesResponse

MEDIA_TYPES = {"csv": "text/csv", "txt": "text/plain"}
CSV_COLUMNS = ["name", "novel", "nll_per_char", "estado", "nearest", "nearest_estado",
               "nearest_distance"]


def wanted_format(format_param: str | None, accept: str) -> str:
    """``json``, ``csv`` or ``txt``: the ``format`` parameter, else the first of text/csv or
    text/plain that the Accept header names (JSON when it names neither)."""
    if format_param:
        return format_param
    for media in (part.split(";")[0].strip() for part in accept.split(",")):
        for fmt, media_type in MEDIA_TYPES.items():
            if media == media_type:
                return fmt
        if media in ("application/json", "*/*"):
            return "json"
    return "json"


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
