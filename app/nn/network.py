"""A character language model: input (one-hot or embedding) -> recurrent layers -> softmax.

The recurrent cell is the RNN or the LSTM (``app.nn.rnn``, ``app.nn.lstm``); everything around it is
shared here. An optional condition (e.g. the state a municipality belongs to) is embedded and
joined to the input at every step.

Parameters live in one flat dict of arrays, named as they are stored in checkpoints:
``embed`` (V, E), ``cond_embed`` (C, K), ``layer{i}.W``, ``layer{i}.b``, ``out.W`` (H, V), ``out.b`` (V).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from types import ModuleType

import numpy as np

from app.data.corpus import Batch
from app.nn import lstm, rnn
from app.nn.recurrent import Workspace, one_blas_thread

CELLS: dict[str, ModuleType] = {"rnn": rnn, "lstm": lstm}

Params = dict[str, np.ndarray]
State = list[tuple[np.ndarray, ...]]  # one state tuple per layer


@dataclass(frozen=True)
class ModelConfig:
    kind: str                 # "rnn" or "lstm"
    vocab_size: int
    hidden: int = 128
    layers: int = 1
    embed: int = 0            # 0 = one-hot input
    dropout: float = 0.0      # on each layer's input (not one-hot) and on the last layer's output
    forget_bias: float = 1.0  # LSTM only
    conditions: int = 0       # number of condition values (0 = unconditioned)
    cond_embed: int = 0       # size of the condition embedding
    # AWD-LSTM regularisation (Merity et al. 2017), training only; all off by default
    locked_dropout: bool = False  # dropout masks drawn once per name, shared by all its steps
    weight_drop: float = 0.0      # DropConnect on the recurrent weights W[D:], one mask per batch
    embed_dropout: float = 0.0    # drop whole characters (embedding rows) for a batch

    def __post_init__(self):
        if self.kind not in CELLS:
            raise ValueError(f"model kind must be one of {sorted(CELLS)}, got {self.kind!r}")
        if self.conditions and not self.cond_embed:
            raise ValueError("a conditioned model needs cond_embed > 0")
        for name in ("dropout", "weight_drop", "embed_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def input_size(self) -> int:
        return (self.embed or self.vocab_size) + (self.cond_embed if self.conditions else 0)

    def to_dict(self) -> dict:
        return asdict(self)


def init_params(config: ModelConfig, rng: np.random.Generator, dtype=np.float32) -> Params:
    params: Params = {}
    V, H = config.vocab_size, config.hidden
    if config.embed:
        params["embed"] = (rng.standard_normal((V, config.embed)) * 0.1).astype(dtype)
    if config.conditions:
        params["cond_embed"] = (rng.standard_normal((config.conditions, config.cond_embed))
                                * 0.1).astype(dtype)
    size = config.input_size
    for i in range(config.layers):
        extra = {"forget_bias": config.forget_bias} if config.kind == "lstm" else {}
        layer = CELLS[config.kind].init_params(size, H, rng, dtype=dtype, **extra)
        params.update({f"layer{i}.{k}": v for k, v in layer.items()})
        size = H
    params["out.W"] = (rng.standard_normal((H, V)) / np.sqrt(H)).astype(dtype)
    params["out.b"] = np.zeros(V, dtype)
    return params


def param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The shape every parameter must have, used to validate checkpoints."""
    params = init_params(config, np.random.default_rng(0), dtype=np.float32)
    return {name: p.shape for name, p in params.items()}


def layer_params(params: Params, i: int) -> Params:
    prefix = f"layer{i}."
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def zero_state(config: ModelConfig, batch_size: int, dtype=np.float32) -> State:
    cell = CELLS[config.kind]
    return [cell.zero_state(batch_size, config.hidden, dtype) for _ in range(config.layers)]


def _inputs(config: ModelConfig, params: Params, ids: np.ndarray, cond: np.ndarray | None):
    """Input vectors for token ids of any shape (..., B) -> (..., B, input_size)."""
    dtype = params["out.W"].dtype
    x = params["embed"][ids] if config.embed else np.eye(config.vocab_size, dtype=dtype)[ids]
    if config.conditions:
        if cond is None:
            raise ValueError("this model is conditioned: pass a condition id per name")
        c = params["cond_embed"][cond]  # (B, K)
        x = np.concatenate([x, np.broadcast_to(c, (*ids.shape, c.shape[-1]))], axis=-1)
    return x


def _keep_mask(shape: tuple[int, ...], rate: float, rng: np.random.Generator, work: Workspace,
               name: str, dtype) -> np.ndarray:
    """Inverted-dropout mask: 0 with probability rate (to within 2^-16), else 1 / (1 - rate), so
    the expected value of what it multiplies is unchanged and evaluation needs no rescaling."""
    dropped = min(round(rate * 65536), 65535)              # of 65536 equally likely draws
    # four uniform 16-bit draws from each raw 64-bit output: 3x faster than rng.integers
    size = math.prod(shape)
    draws = rng.bit_generator.random_raw(-(-size // 4)).view(np.uint16)[:size].reshape(shape)
    kept = np.greater_equal(draws, dropped, out=work.get(name + ".kept", shape, bool))
    return np.multiply(kept, np.dtype(dtype).type(65536 / (65536 - dropped)), out=work.get(name, shape, dtype))


def _dropout(x: np.ndarray, rate: float, rng: np.random.Generator | None, locked: bool,
             work: Workspace, name: str):
    """Dropout of x (T, B, F); returns the output (a new array) and the mask, (T, B, F) or, when
    locked, (B, F) shared by every step (None when off). Backward: dx * mask either way."""
    if rng is None or rate <= 0.0:
        return x, None
    keep = _keep_mask(x.shape[1:] if locked else x.shape, rate, rng, work, name, x.dtype)
    return np.multiply(x, keep, out=work.get(name + ".out", x.shape, x.dtype)), keep


def _drop_recurrent(layer: Params, H: int, rate: float, rng: np.random.Generator | None,
                    work: Workspace, name: str) -> tuple[Params, np.ndarray | None]:
    """DropConnect (weight-dropped LSTM): the layer's parameters with W[D:] masked for this
    batch, and the (H, G) mask (None when off). Its gradient is the masked weights' times it."""
    if rng is None or rate <= 0.0:
        return layer, None
    W = layer["W"]
    D = W.shape[0] - H
    keep = _keep_mask((H, W.shape[1]), rate, rng, work, name, W.dtype)
    dropped = work.get(name + ".W", W.shape, W.dtype)
    dropped[:D] = W[:D]
    np.multiply(W[D:], keep, out=dropped[D:])
    return {**layer, "W": dropped}, keep


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, shifted by the max so exp never overflows."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return shifted


def loss_and_grads(config: ModelConfig, params: Params, batch: Batch, norm: float = 1.0,
                   rng: np.random.Generator | None = None, want_grads: bool = True,
                   work: Workspace | None = None):
    """Masked cross-entropy of a batch and its gradient w.r.t. every parameter.

    Returns (loss, grads, token_nll) where loss = sum of masked token NLL / norm, and
    token_nll (T, B) is each target's NLL (0 on padding). Dropout is on when rng is given.
    Padding sits after each name's end, so it never reaches a real target (the net is causal)
    and masking the loss is enough to make it invisible to both loss and gradients.
    With ``batch.soft`` (distillation) every step's target is a distribution, and token_nll
    its cross-entropy under the model. With a workspace (training), every array is reused from
    batch to batch: the grads and token_nll returned are only valid until its next use. All
    matmuls run on one BLAS thread (see ``recurrent.one_blas_thread``).
    """
    with one_blas_thread():
        return _loss_and_grads(config, params, batch, norm, rng, want_grads, work)


def _loss_and_grads(config, params, batch, norm, rng, want_grads, work):
    work = work or Workspace()
    cell = CELLS[config.kind]
    T, B = batch.inputs.shape
    N, H, V = T * B, config.hidden, config.vocab_size
    E = config.embed or V
    dtype = params["out.W"].dtype
    mask = batch.mask.astype(dtype)
    cond = batch.cond
    rows = np.arange(N)
    x = _inputs(config, params, batch.inputs, cond)            # (T, B, D), a new array
    char_keep = None
    if rng is not None and config.embed_dropout > 0:           # whole characters, for the batch
        char_keep = _keep_mask((V,), config.embed_dropout, rng, work, "char_keep", dtype)
        char_keep = char_keep[batch.inputs][..., None]          # (T, B, 1)
        x[..., :E] *= char_keep
    in_keep = None
    if config.embed:
        x, in_keep = _dropout(x, config.dropout, rng, config.locked_dropout, work, "in_keep")
    layers, caches, keeps, w_keeps = [], [], [], []
    state0 = zero_state(config, B, dtype)
    for i in range(config.layers):
        layer, w_keep = _drop_recurrent(layer_params(params, i), H, config.weight_drop, rng,
                                        work, f"w_keep{i}")
        hs, _, cache = cell.forward(layer, x, state0[i], work.child(f"layer{i}"))
        x, keep = _dropout(hs, config.dropout, rng, config.locked_dropout, work, f"keep{i}")
        layers.append(layer)
        caches.append(cache)
        keeps.append(keep)
        w_keeps.append(w_keep)
    if want_grads:   # the layers' local derivatives, aside while the output layer runs here
        for cache in caches:
            cache.start_backward()
    h_flat = x.reshape(N, H)
    # softmax in place: z = logits - max, p = exp(z) / sum exp(z), nll = log sum exp(z) - z[target]
    z = np.matmul(h_flat, params["out.W"], out=work.get("logits", (N, V), dtype))
    z += params["out.b"]
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z, out=work.get("probs", (N, V), dtype))       # (N, V)
    total = p.sum(axis=-1)                                      # (N,)
    targets = batch.targets.reshape(-1)
    if batch.soft is None:
        target_z = z[rows, targets]                             # (N,)
    else:   # distillation: cross-entropy against the teacher's distribution at every step
        soft = batch.soft.reshape(N, V)                         # (N, V), rows sum to 1
        target_z = np.einsum("nv,nv->n", soft, z)
    token_nll = ((np.log(total) - target_z) * mask.reshape(-1)).reshape(T, B)
    loss = float(token_nll.sum()) / norm
    if not want_grads:
        return loss, None, token_nll

    grads: Params = {}
    dlogits = p                                                 # softmax - target, masked
    dlogits /= total[:, None]
    if batch.soft is None:
        dlogits[rows, targets] -= 1.0
    else:
        dlogits -= soft
    dlogits *= (mask.reshape(-1) / norm)[:, None]
    grads["out.W"] = np.matmul(h_flat.T, dlogits, out=work.get("d_out.W", (H, V), dtype))
    grads["out.b"] = dlogits.sum(axis=0)
    dx = np.matmul(dlogits, params["out.W"].T, out=work.get("dh", (N, H), dtype)).reshape(T, B, H)
    for i in reversed(range(config.layers)):
        if keeps[i] is not None:
            dx *= keeps[i]
        dx, layer_grads, _ = cell.backward(layers[i], dx, caches[i])
        if w_keeps[i] is not None:
            layer_grads["W"][-H:] *= w_keeps[i]
        grads.update({f"layer{i}.{k}": v for k, v in layer_grads.items()})
    if in_keep is not None:
        dx *= in_keep
    if char_keep is not None:
        dx[..., :E] *= char_keep
    if config.embed:  # scatter-add of each position's gradient to its token's row, as a matmul
        onehot = work.get("onehot", (V, N), dtype)             # (V, N)
        onehot[:] = 0.0
        onehot[batch.inputs.reshape(-1), rows] = 1.0
        grads["embed"] = np.matmul(onehot, dx[..., :E].reshape(N, E),
                                   out=work.get("d_embed", (V, E), dtype))
    if config.conditions:
        grads["cond_embed"] = np.zeros_like(params["cond_embed"])
        np.add.at(grads["cond_embed"], cond, dx[..., E:].sum(axis=0))
    return loss, grads, token_nll


@dataclass(frozen=True)
class StepWeights:
    """The parameters rearranged for sampling one token at a time (see ``step``).

    The first layer's input is a token (and a condition), so its share of the pre-activations,
    x_t W[:D] + b, takes one of only V (and C) values: precomputed as tables, a step looks them
    up instead of multiplying. Only the recurrent matmul h @ W[D:] is left for layer 0.
    Everything is gate-major: the G = K*H pre-activation columns (K = 4 gates for the LSTM, 1
    for the RNN) become K blocks of H, so each gate is a contiguous (B, H) array in a step.
    """

    token_in: np.ndarray                   # (K, V, H) layer 0's input term + bias for each token
    cond_in: np.ndarray | None             # (K, C, H) its condition term for each condition value
    recurrent: np.ndarray                  # (K, H, H) layer 0's W[D:]
    upper: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # layers 1..: W[:H], b, W[H:] as
    #                                        (K, H, H), (K, 1, H), (K, H, H)
    out_W: np.ndarray                      # (H, V)
    out_b: np.ndarray                      # (V,)


def gate_major(M: np.ndarray, H: int) -> np.ndarray:
    """(..., R, K*H) columns -> (K, R, H) contiguous blocks, one per gate (bias: R = 1)."""
    M = M.reshape(-1, M.shape[-1])
    return np.ascontiguousarray(M.reshape(M.shape[0], -1, H).transpose(1, 0, 2))


def step_weights(config: ModelConfig, params: Params) -> StepWeights:
    """Tables and gate-major blocks of ``params`` for ``step``, scaled as the cell's step wants
    (``STEP_SCALE``)."""
    W0, b0 = params["layer0.W"], params["layer0.b"]
    E, D, H = config.embed or config.vocab_size, config.input_size, config.hidden
    scale = np.array(CELLS[config.kind].STEP_SCALE, W0.dtype)[:, None, None]   # (K, 1, 1)

    def blocks(M: np.ndarray) -> np.ndarray:
        return gate_major(M, H) * scale

    tokens = params["embed"] if config.embed else np.eye(config.vocab_size, dtype=W0.dtype)
    upper = [layer_params(params, i) for i in range(1, config.layers)]
    return StepWeights(
        token_in=blocks(tokens @ W0[:E] + b0),
        cond_in=blocks(params["cond_embed"] @ W0[E:D]) if config.conditions else None,
        recurrent=blocks(W0[D:]),
        upper=[(blocks(layer["W"][:H]), blocks(layer["b"]), blocks(layer["W"][H:]))
               for layer in upper],
        out_W=params["out.W"], out_b=params["out.b"])


def stack_step_weights(members: list[StepWeights]) -> StepWeights:
    """Step weights of M models of one architecture with a member axis, for ``step`` to run
    them all at once: the gate-major arrays (K, ...) become (K, M, ...), so that a step still
    splits its gates along the first axis; out_W becomes (M, H, V) and out_b (M, 1, V)."""
    def stacked(*arrays, axis=1):
        return np.ascontiguousarray(np.stack(arrays, axis=axis))

    first = members[0]
    return StepWeights(
        token_in=stacked(*(w.token_in for w in members)),
        cond_in=None if first.cond_in is None else stacked(*(w.cond_in for w in members)),
        recurrent=stacked(*(w.recurrent for w in members)),
        upper=[tuple(stacked(*parts) for parts in zip(*layers, strict=True))
               for layers in zip(*(w.upper for w in members), strict=True)],
        out_W=stacked(*(w.out_W for w in members), axis=0),
        out_b=stacked(*(w.out_b for w in members), axis=0)[:, None, :])


def step(config: ModelConfig, weights: StepWeights, ids: np.ndarray, state: State,
         cond: np.ndarray | None = None):
    """Advance every sequence by one token: ids (B,) -> next-token logits (..., B, V), new state.

    With stacked weights (``stack_step_weights``) and states of shape (M, B, H), the M members
    advance together and the logits are (M, B, V).
    """
    cell = CELLS[config.kind]
    a_in = np.take(weights.token_in, ids, axis=-2)                  # (K, ..., B, H)
    if weights.cond_in is not None:
        if cond is None:
            raise ValueError("this model is conditioned: pass a condition id per name")
        a_in += np.take(weights.cond_in, cond, axis=-2)
    h, layer_state = cell.step(weights.recurrent, a_in, state[0])   # (..., B, H)
    new_state = [layer_state]
    for (W_in, b, Wh), layer_state in zip(weights.upper, state[1:], strict=True):
        h, layer_state = cell.step(Wh, np.matmul(h[None], W_in) + b, layer_state)
        new_state.append(layer_state)
    logits = np.matmul(h, weights.out_W)                            # (..., B, V)
    logits += weights.out_b
    return logits, new_state
