"""What the models folder publishes beside the weights: the comparison report
(``python -m app.evaluate --report``) and the cross-validation table (``python -m app.cv
--publish``), read for the API and the /comparar page.

A checkpoint's own validation figure is not always an NLL on unseen names comparable with the
others: for an ensemble it is one member's, on the fold that member did not see, and for a
student (distillation) its cross-entropy to its teacher. Where a recipe's cross-validation was
published for a served model, that is the figure shown for it.
"""

from __future__ import annotations

import json
from pathlib import Path

CROSS_VALIDATION, CHECKPOINT = "cross_validation", "checkpoint"   # where a val_nll comes from


# what the pages read of each file: without it, a file is taken as not generated
REQUIRED_KEYS = {"report.json": ("models", "real", "temperatures"), "cv.json": ("rows",)}


def load_report(folder: Path, name: str = "report.json") -> dict | None:
    """A JSON file of the models folder (the report, the cross-validation table), or None when
    it has not been generated, or is not the object its readers expect (a file edited by hand,
    cut short)."""
    try:
        data = json.loads((folder / name).read_text("utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or any(key not in data for key in REQUIRED_KEYS.get(name, ())):
        return None
    return data


def cv_rows(folder: Path) -> list[dict]:
    """The cross-validated recipes (``python -m app.cv --publish``), best first, each with the
    name it is served as (rows published before ``served_as`` existed: their model's)."""
    table = load_report(folder, "cv.json") or {}
    rows = [{**row, "served_as": row.get("served_as") or row["model"]}
            for row in table.get("rows", [])]
    return sorted(rows, key=lambda row: row["mean"])


def held_out_nll(name: str, own_nll: float | None, distilled: bool,
                 rows: list[dict]) -> tuple[float | None, str | None]:
    """(NLL per character on unseen names, where it comes from) for the served model ``name``:
    its recipe's cross-validation mean if published (``--served``), else the checkpoint's own
    figure, except a student's, which is no NLL on names at all: (None, None)."""
    served = {row["served_as"]: row["mean"] for row in rows if row.get("served")}
    if name in served:
        return served[name], CROSS_VALIDATION
    if distilled or own_nll is None:
        return None, None
    return own_nll, CHECKPOINT


def with_cross_validation(report: dict, rows: list[dict]) -> dict:
    """The report with each model's ``val_nll`` as ``held_out_nll`` gives it, and its
    ``val_nll_source``."""
    models = []
    for m in report["models"]:
        nll, source = held_out_nll(m["name"], m.get("val_nll"), bool(m.get("distilled_from")), rows)
        models.append({**m, "val_nll": nll, "val_nll_source": source})
    return {**report, "models": models}
