"""Draw sequences from a model as one batch: the step loop behind ``app.generation.sampling``.

    names, nll = draw(model, 16, "", 40, 0.8, None, np.random.default_rng(0))

Vectorised over sequences; only time steps are looped, and a step is a handful of numpy calls
on a few rows, so its fixed costs are what this module keeps small. A sequence leaves the batch
when it emits the boundary token. The batch keeps a multiple of 4 rows (``padded_rows``): for
row counts that are not, OpenBLAS's matrix product takes 1.4-1.5x as long as for the next
multiple of 4 (11 rows cost more than 12), so up to 3 finished rows stay in as fillers, whose
tokens nobody reads.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

import numpy as np

from app.generation.deadline import Deadline

T = TypeVar("T")

# T multiplies the Gumbel noise (|log(-log U)| <= 4.5 in float32): outside these bounds it acts
# like them, the argmax of the logits below and the noise alone above, and never overflows
MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-30, 1e30
TINY = np.finfo(np.float32).tiny


def padded_rows(n: int) -> int:
    """Batch rows for ``n`` sequences: a multiple of 4, except 1 (a matrix-vector product)."""
    return n if n == 1 else -(-n // 4) * 4


def _pick(logits: np.ndarray, temperature: float, top_k: int | None,
          uniform: np.ndarray) -> np.ndarray:
    """One token per row (b,) from softmax(logits / T), optionally among the top_k only;
    ``uniform`` (b, V) holds fresh U(0, 1) numbers, none of them 0, and is overwritten.

    The Gumbel-max trick: with G = -log(-log U) drawn independently for every entry,
    argmax(z + G) is an exact draw from softmax(z). No exp, no normalising, no cumulative sum,
    and a step costs fewer numpy calls than inverse-CDF sampling. T scales the noise instead of
    the logits, argmax(logits / T + G) = argmax(logits + T G), so the sum goes into the noise's
    buffer and the logits, which the caller keeps, are never copied.
    """
    minus_g = uniform
    np.log(minus_g, out=minus_g)
    np.negative(minus_g, out=minus_g)
    np.log(minus_g, out=minus_g)               # log(-log U) = -G
    if temperature != 1.0:
        minus_g *= min(max(temperature, MIN_TEMPERATURE), MAX_TEMPERATURE)
    z = np.subtract(logits, minus_g, out=minus_g)
    V = z.shape[1]
    if top_k is not None and top_k < V:
        kth = np.partition(logits, V - top_k, axis=1)[:, V - top_k, None]
        z[logits < kth] = -np.inf
    return z.argmax(axis=1)


def draw(model, count: int, prefix: str, max_length: int, temperature: float,
         top_k: int | None, rng: np.random.Generator,
         cond: np.ndarray | None = None) -> tuple[list[str | None], np.ndarray]:
    """Sample ``count`` sequences starting with ``prefix`` (conditioned on ``cond`` if given).

    Returns each name (None when it hit ``max_length`` without ending) and its NLL per
    character under the model (T=1, end token counted).
    """
    return run_to_end(draw_steps(model, count, prefix, max_length, temperature, top_k, rng,
                                 cond))


def run_to_end(steps: Generator[None, None, T]) -> T:
    """Run a step generator (``draw_steps``, ``sample_steps``) through; its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def draw_steps(model, count: int, prefix: str, max_length: int, temperature: float,
               top_k: int | None, rng: np.random.Generator, cond: np.ndarray | None = None,
               deadline: Deadline | None = None):
    """``draw`` as a generator that yields after every step, so that a caller can do other
    work in between (the web service hands its event loop back); returns what ``draw`` does.

    Each sequence gets its own (steps, V) block of uniforms, drawn for all at once: sequence i
    reads the i-th block of the generator's stream whatever ``count`` is, so consecutive calls
    with one generator give the same sequences however the draws are split between calls.
    Once ``deadline`` (already started) has passed it stops drawing: sequences that have not
    ended by then come back as None.
    """
    deadline = deadline or Deadline()
    vocab = model.vocab
    prefix_ids = vocab.encode(prefix)
    steps = max_length - len(prefix) + 1           # characters still allowed, then the end token
    size = padded_rows(count)
    # sequence `count` is where filler rows read noise and write tokens; _finish drops it
    uniform = np.empty((count + 1, steps, len(vocab)), np.float32)  # (count + 1, steps, V)
    rng.random(out=uniform[:count], dtype=np.float32)
    uniform[count] = 0.5
    uniform += TINY                                # U = 0 would be log(0) in _pick
    alive = np.minimum(np.arange(size), count)     # batch row -> sequence index (count: filler)
    if cond is not None:
        cond = np.pad(cond, (0, size - count), mode="edge")
    state = model.initial_state(size, cond)
    # the loop only picks tokens and drops finished rows; what each step saw is kept and
    # turned into names and NLLs once at the end: per step, every numpy call counts
    seen_rows, seen_logits, seen_tokens = [], [], []
    logits, state = model.next_logits(np.zeros(size, dtype=np.int64), state)
    for token in prefix_ids:
        seen_rows.append(alive)
        seen_logits.append(logits)
        seen_tokens.append(np.full(size, token))
        logits, state = model.next_logits(seen_tokens[-1], state)
        yield from deadline.paused()

    for t in range(steps):
        picked = _pick(logits, temperature, top_k, uniform[alive, t])   # (b,)
        seen_rows.append(alive)
        seen_logits.append(logits)
        seen_tokens.append(picked)
        if np.count_nonzero(picked) < len(picked):  # id 0, the boundary, ends a name
            alive = np.where(picked == 0, count, alive)   # ended: a filler row from now on
            live = np.count_nonzero(alive < count)
            if not live:
                break
            if padded_rows(live) < len(alive):
                rows = np.argsort(alive, kind="stable")[:padded_rows(live)]  # live ones first
                alive, picked, state = alive[rows], picked[rows], model.select(state, rows)
        logits, state = model.next_logits(picked, state)
        yield from deadline.paused()
        if deadline.passed():
            break
    return _finish(vocab, count, prefix, seen_rows, seen_logits, seen_tokens)


def _finish(vocab, count: int, prefix: str, seen_rows: list[np.ndarray],
            seen_logits: list[np.ndarray], seen_tokens: list[np.ndarray]):
    """Names and NLL per character from what ``draw`` saw at each step, all steps at once."""
    seq = np.concatenate(seen_rows)                                     # (R,)
    step = np.repeat(np.arange(len(seen_rows)), [len(r) for r in seen_rows])
    token = np.concatenate(seen_tokens)                                 # (R,)
    real = seq < count                                # what filler rows saw is dropped
    seq, step, token = seq[real], step[real], token[real]
    # each picked token's NLL, log sum exp(z) - z[token], with z shifted by its row's max so
    # that exp never overflows; the row sums as a matrix product (4x faster than .sum on 68 columns)
    z = np.concatenate(seen_logits)[real]                               # (R', V)
    z -= z.max(axis=1, keepdims=True)
    picked_z = z[np.arange(len(seq)), token]
    total = np.matmul(np.exp(z, out=z), np.ones(z.shape[1], z.dtype))   # (R',)
    nll = np.bincount(seq, (np.log(total) - picked_z).astype(np.float64), count)
    length = np.bincount(seq, minlength=count)        # tokens per sequence, end token included
    tokens = np.zeros((count, len(seen_rows)), dtype=np.int64)
    tokens[seq, step] = token
    ended = tokens[np.arange(count), length - 1] == 0
    names = [prefix + text if done else None
             for text, done in zip(_decode_rows(vocab, tokens[:, len(prefix):]), ended,
                                   strict=True)]
    return names, nll / length


def _decode_rows(vocab, tokens: np.ndarray) -> list[str]:
    """Each row of token ids as text, up to its first boundary token (id 0).

    Vectorised: a vocabulary entry is one character, so a row of ids maps to a row of
    one-character cells read as one string, and numpy drops the trailing NULs of id 0.
    """
    table = np.array(["", *vocab.chars[1:]], dtype="<U1")
    return table[tokens].view(f"<U{tokens.shape[1]}")[:, 0].tolist()


