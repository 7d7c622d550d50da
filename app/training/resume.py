"""Going on from a run's checkpoint (``--resume``): its weights, optimiser state and history."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.data.corpus import DataError
from app.lm.base import load_checkpoint
from app.lm.checkpoint import CheckpointError
from app.lm.neural import NeuralLM
from app.nn.optim import OPTIMIZERS
from app.training.config import TrainConfig

LIVE = "live."   # optimizer-state prefix of the trained weights when the average is saved


@dataclass
class Resumed:
    """A run as it was saved: the model it trains, its optimiser, and where it stood."""

    model: NeuralLM               # the trained (live) weights, float32
    optimizer: object
    saved_params: dict            # the weights the checkpoint serves (the average, if any)
    history: list[dict]
    best: dict                    # {"val_nll", "epoch"}
    seconds: float


def resume(source: Path, cfg: TrainConfig, data_sha256: str) -> Resumed:
    """Load ``source`` to continue training it with ``cfg``, or raise DataError saying why not."""
    try:
        saved = load_checkpoint(source)
    except CheckpointError as exc:
        raise DataError(f"--resume: {exc}") from None
    if saved.kind != cfg.model:
        raise DataError(f"--resume: {source} holds a {saved.kind} model, not {cfg.model}")
    meta = saved.metadata
    if meta.get("data_sha256") != data_sha256:
        raise DataError(f"--resume: {source} was trained on other data; drop --resume to start anew")
    saved_model = NeuralLM.from_checkpoint(saved)
    # an averaged checkpoint keeps the trained weights beside the optimiser's state
    state = {k: v for k, v in saved.optimizer_state.items() if not k.startswith(LIVE)}
    live = {k[len(LIVE):]: v for k, v in saved.optimizer_state.items() if k.startswith(LIVE)}
    params = {k: p.astype(np.float32) for k, p in (live or saved_model.params).items()}
    model = NeuralLM(saved_model.config, params, saved_model.vocab, meta)
    optimizer = OPTIMIZERS[cfg.optimizer](model.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if set(state) != set(optimizer.state):
        raise DataError(f"--resume: {source} has no {cfg.optimizer} state to resume")
    optimizer.state = state
    return Resumed(model, optimizer, saved_model.params, meta["history"],
                   {"val_nll": meta["metrics"]["val_nll"], "epoch": meta["metrics"]["best_epoch"]},
                   meta["metrics"]["train_seconds"])
