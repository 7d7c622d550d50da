"""Where the project's files live, from one root, so a module can move without counting parents."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
MODELS_DIR = ROOT / "models"        # the served weights; runs in progress go to models/.runs/
RUNS_DIR = ROOT / "runs"            # cross-validation folds and logs (not committed)
STATIC_DIR = ROOT / "static"
TEMPLATES_DIR = ROOT / "templates"
