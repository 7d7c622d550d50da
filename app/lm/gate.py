"""A mixture weight that depends on the context (after Neubig & Dyer 2016).

One scalar weight trusts the network and the n-gram equally everywhere. The gate instead looks,
at every step, at how sure each model is and how much the two agree, and picks the network's
weight there: w = sigmoid(theta . [1, z]), z the standardised features below. Nine numbers,
fitted on out-of-fold predictions (``app.mixture``), so it cannot memorise the names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURES = ("entropy_neural", "entropy_ngram", "max_log_p_neural", "max_log_p_ngram", "agreement",
            "entropy_product", "entropy_neural_squared", "entropy_ngram_squared")


def gate_features(log_a: np.ndarray, log_b: np.ndarray) -> np.ndarray:
    """(..., V) log-probabilities of the two models -> (..., F) features, in FEATURES order."""
    log_a, log_b = log_a.astype(np.float64), log_b.astype(np.float64)
    p_a, p_b = np.exp(log_a), np.exp(log_b)
    h_a = -(p_a * np.maximum(log_a, -1e30)).sum(axis=-1)          # entropy, nats; 0·log 0 = 0
    h_b = -(p_b * np.maximum(log_b, -1e30)).sum(axis=-1)
    agreement = (p_a * p_b).sum(axis=-1)                            # P(both draw the same letter)
    return np.stack([h_a, h_b, log_a.max(axis=-1), log_b.max(axis=-1), agreement,
                     h_a * h_b, h_a**2, h_b**2], axis=-1)


@dataclass(frozen=True)
class Gate:
    """w(context) = sigmoid(theta[0] + theta[1:] . (features - mean) / scale)."""

    theta: np.ndarray   # (F + 1,) bias first
    mean: np.ndarray    # (F,) of the features it was fitted on
    scale: np.ndarray   # (F,)

    def logit(self, features: np.ndarray) -> np.ndarray:
        """(..., F) features -> (...,) the gate's logit."""
        return self.theta[0] + ((features - self.mean) / self.scale) @ self.theta[1:]

    def log_weights(self, log_a: np.ndarray, log_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log w and log (1 - w) at every position of (..., V) log-probabilities: (...,) each."""
        z = self.logit(gate_features(log_a, log_b))
        return -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z)

    def mix(self, log_a: np.ndarray, log_b: np.ndarray) -> np.ndarray:
        """log(w p_a + (1 - w) p_b) over the last axis: the gated mixture's log-probabilities."""
        log_w, log_not_w = self.log_weights(log_a, log_b)
        return np.logaddexp(log_w[..., None] + log_a, log_not_w[..., None] + log_b)

    def to_dict(self) -> dict:
        return {"features": list(FEATURES), "theta": self.theta.tolist(),
                "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, saved: dict) -> Gate:
        if saved.get("features") != list(FEATURES):
            raise ValueError(f"the gate was fitted on other features: {saved.get('features')}")
        theta, mean, scale = (np.asarray(saved[k], dtype=np.float64) for k in ("theta", "mean", "scale"))
        F = len(FEATURES)
        if theta.shape != (F + 1,) or mean.shape != (F,) or scale.shape != (F,):
            raise ValueError("the gate's arrays do not match its features")
        if not (np.isfinite(theta).all() and np.isfinite(mean).all() and (scale > 0).all()):
            raise ValueError("the gate holds a non-finite number or a scale that is not positive")
        return cls(theta, mean, scale)


def fit_gate(log_a: np.ndarray, log_b: np.ndarray, target: np.ndarray, start_weight: float = 0.5,
             steps: int = 2000, lr: float = 0.05) -> Gate:
    """The gate maximising sum log(w p_a(y) + (1 - w) p_b(y)) over N scored tokens.

    log_a, log_b: (N, V) each model's log-probabilities at every token; target: (N,) the token
    that came. Adam on the 9 parameters, full batch (so the fit is deterministic), from the
    constant gate ``start_weight`` (the best single weight, so the gate starts where it is).
    """
    features = gate_features(log_a, log_b)
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-12
    z = np.column_stack([np.ones(len(features)), (features - mean) / scale])   # (N, F + 1)
    rows = np.arange(len(target))
    p_a, p_b = np.exp(log_a[rows, target]), np.exp(log_b[rows, target])        # (N,)
    theta, m, v = np.zeros(z.shape[1]), np.zeros(z.shape[1]), np.zeros(z.shape[1])
    theta[0] = np.log(start_weight / (1 - start_weight))
    for t in range(1, steps + 1):
        w = 1.0 / (1.0 + np.exp(-(z @ theta)))
        # d/dtheta of -mean log(w p_a + (1 - w) p_b)
        grad = -(((p_a - p_b) * w * (1 - w) / (w * p_a + (1 - w) * p_b))[:, None] * z).mean(axis=0)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        theta -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return Gate(theta, mean, scale)
