"""The package's floors: each subpackage imports only the floors below it (see app/__init__.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import app

APP = Path(app.__file__).parent
# lower floors first; the modules directly in app/ are the entry points, above everything
FLOORS = [("paths", "flags", "console"), ("data",), ("nn",), ("lm",), ("generation",), ("training", "eval"), ("web",)]
ENTRY_POINTS = len(FLOORS)


def floor_of(module: str) -> int:
    """The floor of a dotted module inside app (``app.lm.base`` -> 3)."""
    top = module.split(".")[1] if module.count(".") else ""
    for level, packages in enumerate(FLOORS):
        if top in packages:
            return level
    return ENTRY_POINTS


def imports_of(path: Path) -> set[str]:
    """Every ``app.*`` module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("app.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
            found |= ({node.module} if node.module != "app" else
                      {f"app.{alias.name}" for alias in node.names})
    return found


def module_name(path: Path) -> str:
    return ".".join(("app", *path.relative_to(APP).with_suffix("").parts))


def test_every_import_points_to_the_same_floor_or_below():
    upward = [f"{module_name(path)} imports {imported}"
              for path in sorted(APP.rglob("*.py"))
              for imported in sorted(imports_of(path))
              if floor_of(imported) > floor_of(module_name(path))]
    assert upward == []


def test_training_and_evaluation_do_not_lean_on_each_other():
    crossing = [f"{module_name(path)} imports {imported}"
                for path in sorted(APP.rglob("*.py"))
                for imported in sorted(imports_of(path))
                if {module_name(path).split(".")[1], imported.split(".")[1]} == {"training", "eval"}]
    assert crossing == []


def test_the_floor_check_sees_an_upward_import(tmp_path):
    lowly = tmp_path / "lowly.py"
    lowly.write_text("from app.web.registry import Registry\nimport app.lm.base\n")
    assert imports_of(lowly) == {"app.web.registry", "app.lm.base"}
    assert floor_of("app.web.registry") > floor_of("app.data.corpus") > floor_of("app.paths")
