"""A log-linear term for the mezcla: the two sides multiplied, not only averaged (after Klakow 1998).

The gated average w p_a + (1 - w) p_b puts mass wherever either side does. The product of the two,
raised to powers and renormalised over the vocabulary,

    p_prod(c) ∝ (p_a(c)^v  p_b(c)^(1 - v))^s,

puts it where *both* agree, sharpened (s > 1) or flattened (s < 1). The mezcla serves a share
lam of it:  p(c) = (1 - lam) p_gated(c) + lam p_prod(c). Three numbers, fitted on out-of-fold
predictions like the gate (``app.training.mixture_fit``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from app.nn.network import log_softmax


@dataclass(frozen=True)
class Product:
    """p = (1 - share) p_gated + share * normalise((p_a^weight p_b^(1 - weight))^sharpness)."""

    weight: float      # v: the first side's share of the exponents, in [0, 1]
    sharpness: float   # s > 0
    share: float       # lam: the product's share of the served distribution, in [0, 1)

    def __post_init__(self):
        if not (0.0 <= self.weight <= 1.0 and 0.0 < self.sharpness <= 10.0
                and 0.0 <= self.share < 1.0):
            raise ValueError(f"a product term needs weight in [0, 1], sharpness in (0, 10] and "
                             f"share in [0, 1): {asdict(self)}")

    def log_product(self, log_a: np.ndarray, log_b: np.ndarray) -> np.ndarray:
        """(..., V) log p_prod from the two sides' (..., V) log-probabilities."""
        return log_softmax(self.sharpness * (self.weight * log_a + (1.0 - self.weight) * log_b))

    def mix(self, log_gated: np.ndarray, log_a: np.ndarray, log_b: np.ndarray) -> np.ndarray:
        """(..., V) log p: the gated mixture's log-probabilities with the product's share added."""
        if self.share == 0.0:
            return log_gated
        return np.logaddexp(np.log1p(-self.share) + log_gated,
                            np.log(self.share) + self.log_product(log_a, log_b))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict) -> Product:
        """Raises ValueError for missing or out-of-range numbers."""
        try:
            return cls(float(saved["weight"]), float(saved["sharpness"]), float(saved["share"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"a product term needs weight, sharpness and share: {saved}") from exc
