"""Refusing a model too large for this machine before allocating it (``--hidden 100000``)."""

from __future__ import annotations

import os

from app.data.corpus import DataError
from app.nn.network import ModelConfig


def physical_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def training_bytes(config: ModelConfig, longest: int, batch_size: int) -> int:
    """A rough upper bound of the memory training ``config`` needs, counted without allocating.

    Six float32 copies of the weights (weights, gradients, two Adam moments, the average, the
    step tables) and per layer about 12 floats per step, name and hidden unit of cached
    activations, on a batch of ``batch_size`` names (the larger of training and validation).
    """
    gates = 4 if config.kind == "lstm" else 1
    size, n_params = config.input_size, 0
    for _ in range(config.layers):
        n_params += (size + config.hidden + 1) * gates * config.hidden
        size = config.hidden
    n_params += (config.hidden + 1) * config.vocab_size + config.vocab_size * config.embed
    steps = (longest + 1) * batch_size
    activations = steps * (12 * config.layers * config.hidden + 3 * config.vocab_size)
    return 4 * (6 * n_params + activations)


def check_memory(config: ModelConfig, longest: int, batch_size: int) -> None:
    """Raise DataError, naming the sizes, if training ``config`` would not fit in memory."""
    needed, available = training_bytes(config, longest, batch_size), physical_memory()
    if needed > available:
        raise DataError(f"--hidden {config.hidden} --layers {config.layers} --embed "
                        f"{config.embed}: training this model needs about {needed / 2**30:.1f} "
                        f"GiB, more than this machine's {available / 2**30:.1f} GiB; "
                        f"choose smaller sizes")
