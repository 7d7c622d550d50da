"""Train an RNN or LSTM on the municipality names and save the best weights.

    python -m app.train --model lstm

Early stopping on validation NLL; the checkpoint is written atomically each time validation
improves, so Ctrl-C (or a crash) leaves the best model so far, never half a file.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from app import checkpoint, markov, network
from app.checkpoint import CheckpointError
from app.corpus import (
    DEFAULT_NAMES,
    DEFAULT_STATES_CSV,
    Corpus,
    DataError,
    Vocabulary,
    data_sha256,
    length_bucketed_batches,
    read_corpus,
    split_names,
)
from app.lm import NeuralLM, load_checkpoint
from app.network import ModelConfig
from app.optim import OPTIMIZERS, WeightAverage, clip_global_norm

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
LIVE = "live."   # optimizer-state prefix of the trained weights when the average is saved


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a training run; defaults are the best found for each kind."""

    model: str = "lstm"
    hidden: int = 160
    layers: int = 1
    embed: int = 64
    dropout: float = 0.4
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-2
    optimizer: str = "adam"
    clip: float = 5.0
    weight_decay: float = 0.0
    lr_decay: float = 0.5
    ema: float = 0.998        # decay of the weight average evaluated and saved; 0 = raw weights
    patience: int = 4
    val_fraction: float = 0.1
    seed: int = 0
    condition: str = "none"   # "estado": the model is told each name's state
    cond_embed: int = 16


# per-kind defaults, applied where the user gave no flag
KIND_DEFAULTS: dict[str, dict] = {
    "lstm": {},
    "rnn": {"layers": 2, "hidden": 192, "embed": 32, "dropout": 0.3, "lr": 6e-3, "ema": 0.995},
}


def evaluate_nll(model: NeuralLM, batches) -> float:
    """Mean NLL per predicted token (nats) over batches, dropout off."""
    total = sum(float(model.token_nll(b).sum()) for b in batches)
    return total / sum(b.n_tokens for b in batches)


def _default(name: str) -> str:
    """A flag's default as shown in --help, per kind where the kinds differ."""
    lstm = getattr(TrainConfig(), name)
    rnn = KIND_DEFAULTS["rnn"].get(name, lstm)
    return f"default: {lstm}" if lstm == rnn else f"default: {lstm} for lstm, {rnn} for rnn"


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m app.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted([*network.CELLS, "markov"]), default=d.model,
                   help="recurrent cell, or markov for the n-gram baseline (default: %(default)s)")
    p.add_argument("--data", type=Path,
                   help="UTF-8 text file, one name per line, or a CSV with estado and municipio "
                        "columns (default: data/municipios.txt; with --condition estado, "
                        "data/municipios_por_estado.csv)")
    p.add_argument("--condition", choices=["none", "estado"],
                   help="'estado' trains a model told each name's state (default: none)")
    p.add_argument("--cond-embed", type=int, help=f"size of the state embedding ({_default('cond_embed')})")
    p.add_argument("--out", type=Path, help="checkpoint to write (default: models/<model>.npz)")
    p.add_argument("--hidden", type=int, help=f"hidden units per layer ({_default('hidden')})")
    p.add_argument("--layers", type=int, help=f"recurrent layers ({_default('layers')})")
    p.add_argument("--embed", type=int, help=f"character embedding size, 0 = one-hot ({_default('embed')})")
    p.add_argument("--dropout", type=float, help=f"dropout rate in [0, 1) ({_default('dropout')})")
    p.add_argument("--epochs", type=int, help=f"maximum epochs ({_default('epochs')})")
    p.add_argument("--batch-size", type=int, help=f"names per minibatch ({_default('batch_size')})")
    p.add_argument("--lr", type=float, help=f"learning rate ({_default('lr')})")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help=f"{_default('optimizer')}")
    p.add_argument("--clip", type=float, help=f"max global gradient norm, 0 = off ({_default('clip')})")
    p.add_argument("--weight-decay", type=float, help=f"decoupled weight decay ({_default('weight_decay')})")
    p.add_argument("--lr-decay", type=float,
                   help=f"multiply the learning rate by this after an epoch without improvement "
                        f"({_default('lr_decay')}; 1 = constant)")
    p.add_argument("--ema", type=float,
                   help=f"evaluate and save a moving average of the weights with this decay per "
                        f"step, 0 = the raw weights ({_default('ema')})")
    p.add_argument("--patience", type=int, help=f"epochs without improvement before stopping ({_default('patience')})")
    p.add_argument("--val-fraction", type=float, help=f"share of distinct names held out ({_default('val_fraction')})")
    p.add_argument("--seed", type=int, help=f"seed for init, split, shuffling and dropout ({_default('seed')})")
    p.add_argument("--resume", action="store_true",
                   help="continue from --out with its optimizer state and epoch counter")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Flags given on the command line win; then the kind's defaults; then TrainConfig's."""
    values = {**KIND_DEFAULTS[args.model], "model": args.model}
    for f in fields(TrainConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    cfg = TrainConfig(**values)
    checks = [
        (cfg.hidden >= 1, f"--hidden must be >= 1, got {cfg.hidden}"),
        (cfg.layers >= 1, f"--layers must be >= 1, got {cfg.layers}"),
        (cfg.embed >= 0, f"--embed must be >= 0 (0 = one-hot), got {cfg.embed}"),
        (0.0 <= cfg.dropout < 1.0, f"--dropout must be in [0, 1), got {cfg.dropout}"),
        (cfg.epochs >= 1, f"--epochs must be >= 1, got {cfg.epochs}"),
        (cfg.batch_size >= 1, f"--batch-size must be >= 1, got {cfg.batch_size}"),
        (cfg.lr > 0 and math.isfinite(cfg.lr), f"--lr must be a positive number, got {cfg.lr}"),
        (cfg.clip >= 0, f"--clip must be >= 0, got {cfg.clip}"),
        (cfg.weight_decay >= 0, f"--weight-decay must be >= 0, got {cfg.weight_decay}"),
        (0.0 < cfg.lr_decay <= 1.0, f"--lr-decay must be in (0, 1], got {cfg.lr_decay}"),
        (0.0 <= cfg.ema < 1.0, f"--ema must be in [0, 1), got {cfg.ema}"),
        (cfg.patience >= 1, f"--patience must be >= 1, got {cfg.patience}"),
        (cfg.cond_embed >= 1, f"--cond-embed must be >= 1, got {cfg.cond_embed}"),
    ]
    for ok, message in checks:
        if not ok:
            raise DataError(message)
    return cfg


class Trainer:
    """One training run: data, model, optimiser, and the loop with early stopping."""

    def __init__(self, cfg: TrainConfig, data: Path, out: Path, resume: bool = False,
                 quiet: bool = False):
        self.cfg, self.out, self.quiet = cfg, out, quiet
        corpus = read_corpus(data)
        if cfg.condition == "estado" and corpus.states is None:
            raise DataError(f"--condition estado needs a CSV with an estado column; {data} has none")
        self.split = split_names(corpus.names, cfg.val_fraction, cfg.seed, strata=corpus.states)
        self.data_info = {"data_path": str(data), "data_sha256": data_sha256(corpus.names),
                          "split": self.split.description}
        self.conditions = self._conditions(corpus)
        if resume:
            self._resume()
        else:
            vocab = Vocabulary.from_names(self.split.train)
            config = ModelConfig(kind=cfg.model, vocab_size=len(vocab), hidden=cfg.hidden,
                                 layers=cfg.layers, embed=cfg.embed, dropout=cfg.dropout,
                                 conditions=len(self.conditions.get("conditions", [])),
                                 cond_embed=cfg.cond_embed if self.conditions else 0)
            params = network.init_params(config, np.random.default_rng(cfg.seed))
            self.model = NeuralLM(config, params, vocab, dict(self.conditions))
            self.optimizer = OPTIMIZERS[cfg.optimizer](params, lr=cfg.lr,
                                                       weight_decay=cfg.weight_decay)
            self._average_from(params)
            self.history: list[dict] = []
            self.best = {"val_nll": math.inf, "epoch": 0}
            self.seconds = 0.0
        vocab = self.model.vocab
        cond_ids = self._condition_ids(corpus)
        self.train_encoded = [vocab.encode(n) for n in self.split.train]
        self.train_cond = cond_ids and [cond_ids[i] for i in self.split.train_index]
        val = [(vocab.encode(corpus.names[i]), cond_ids and cond_ids[i])
               for i in self.split.val_index if not vocab.unknown(corpus.names[i])]
        self.n_val_names = len(val)
        self.val_skipped = len(self.split.val) - len(val)
        self.val_batches = length_bucketed_batches(
            [ids for ids, _ in val], 256, cond=cond_ids and [c for _, c in val])
        self.train_eval_batches = length_bucketed_batches(self.train_encoded, 256,
                                                          cond=self.train_cond)

    def _conditions(self, corpus: Corpus) -> dict:
        """Checkpoint metadata naming the condition values (states in INEGI order) and counts."""
        if self.cfg.condition != "estado":
            return {}
        states = sorted(corpus.state_codes, key=lambda s: (corpus.state_codes[s], s))
        counts = Counter(corpus.states)
        return {"condition": "estado", "conditions": states,
                "condition_codes": [corpus.state_codes[s] for s in states],
                "condition_counts": [counts[s] for s in states]}

    def _condition_ids(self, corpus: Corpus) -> list[int] | None:
        if not self.conditions:
            return None
        index = {s: i for i, s in enumerate(self.conditions["conditions"])}
        return [index[s] for s in corpus.states]

    def _average_from(self, params: dict[str, np.ndarray]) -> None:
        """Start the weight average at ``params``; ``self.scored`` is the model evaluated and
        saved: the average's, or the trained one itself when averaging is off."""
        model = self.model
        self.average = WeightAverage(params, self.cfg.ema) if self.cfg.ema else None
        self.scored = (NeuralLM(model.config, self.average.params, model.vocab, model.metadata)
                       if self.average else model)

    def _resume(self) -> None:
        try:
            saved = load_checkpoint(self.out)
        except CheckpointError as exc:
            raise DataError(f"--resume: {exc}") from None
        if saved.kind != self.cfg.model:
            raise DataError(f"--resume: {self.out} holds a {saved.kind} model, not {self.cfg.model}")
        meta = saved.metadata
        if meta.get("data_sha256") != self.data_info["data_sha256"]:
            raise DataError(f"--resume: {self.out} was trained on other data; drop --resume to start anew")
        saved_model = NeuralLM.from_checkpoint(saved)
        # an averaged checkpoint keeps the trained weights beside the optimiser's state
        state = {k: v for k, v in saved.optimizer_state.items() if not k.startswith(LIVE)}
        live = {k[len(LIVE):]: v for k, v in saved.optimizer_state.items() if k.startswith(LIVE)}
        params = {k: p.astype(np.float32) for k, p in (live or saved_model.params).items()}
        self.model = model = NeuralLM(saved_model.config, params, saved_model.vocab, meta)
        self.optimizer = OPTIMIZERS[self.cfg.optimizer](model.params, lr=self.cfg.lr,
                                                        weight_decay=self.cfg.weight_decay)
        if set(state) != set(self.optimizer.state):
            raise DataError(f"--resume: {self.out} has no {self.cfg.optimizer} state to resume")
        self.optimizer.state = state
        self._average_from(saved_model.params)
        self.history = meta["history"]
        self.best = {"val_nll": meta["metrics"]["val_nll"], "epoch": meta["metrics"]["best_epoch"]}
        self.seconds = meta["metrics"]["train_seconds"]

    def run(self) -> dict:
        cfg, model = self.cfg, self.model
        n_tokens = sum(len(ids) + 1 for ids in self.train_encoded)
        n_batches = math.ceil(len(self.train_encoded) / cfg.batch_size)
        norm = n_tokens / n_batches  # a constant: long and short names weigh per character
        start_epoch = len(self.history) + 1
        lr_scale = self.history[-1]["lr_scale"] if self.history else 1.0
        for epoch in range(start_epoch, cfg.epochs + 1):
            if epoch - self.best["epoch"] > cfg.patience:
                break
            rng = np.random.default_rng([cfg.seed, epoch])
            batches = length_bucketed_batches(self.train_encoded, cfg.batch_size, rng,
                                              cond=self.train_cond)
            started, total, seen = time.perf_counter(), 0.0, 0
            bar = tqdm(batches, desc=f"epoch {epoch:3d}", disable=self.quiet, leave=False,
                       unit="batch", dynamic_ncols=True)
            for i, batch in enumerate(bar, 1):
                loss, grads, _ = network.loss_and_grads(model.config, model.params, batch,
                                                        norm=norm, rng=rng)
                clip_global_norm(grads, cfg.clip)
                self.optimizer.step(model.params, grads, lr_scale)
                if self.average:
                    self.average.update(model.params)
                total += loss * norm
                seen += batch.n_tokens
                if i % 10 == 0:
                    elapsed = time.perf_counter() - started
                    bar.set_postfix(loss=f"{loss:.3f}", chars_s=f"{seen / elapsed:,.0f}")
            epoch_seconds = time.perf_counter() - started
            self.seconds += epoch_seconds
            val_nll = evaluate_nll(self.scored, self.val_batches)
            improved = val_nll < self.best["val_nll"]
            record = {"epoch": epoch, "train_nll": total / n_tokens, "val_nll": val_nll,
                      "seconds": round(epoch_seconds, 3), "lr_scale": lr_scale}
            self.history.append(record)
            if improved:
                self.best = {"val_nll": val_nll, "epoch": epoch}
                self._save(n_tokens * epoch / self.seconds)
            else:
                lr_scale *= cfg.lr_decay  # a plateau: take smaller steps
            self._log(f"epoch {epoch:3d}  train {record['train_nll']:.4f}  val {val_nll:.4f}  "
                      f"{n_tokens / epoch_seconds:,.0f} chars/s" + ("  saved" if improved else ""))
        self._add_train_nll()
        return self.best

    def _save(self, chars_per_second: float) -> None:
        metrics = {
            "train_loss": self.history[-1]["train_nll"],  # running mean, dropout on
            "val_nll": self.best["val_nll"],
            "best_epoch": self.best["epoch"],
            "train_seconds": round(self.seconds, 2),
            "chars_per_second": round(chars_per_second, 1),
            "n_train_names": len(self.split.train),
            "n_val_names": self.n_val_names,
            "val_skipped": self.val_skipped,
        }
        meta = {**self.data_info, **self.conditions, "train_config": asdict(self.cfg),
                "metrics": metrics, "history": self.history}
        state = dict(self.optimizer.state)
        if self.average:  # the trained weights, for --resume; the average is the model
            state.update({LIVE + k: v for k, v in self.model.params.items()})
        checkpoint.save(self.out, self.scored.checkpoint(meta, state))

    def _add_train_nll(self) -> None:
        """Score the training names with the best weights (dropout off), once training ends.

        Done here rather than at every save: a full pass over the training names each time
        validation improved cost about a quarter of the training time.
        """
        if not self.best["epoch"] or not self.out.exists():
            return
        saved = load_checkpoint(self.out)
        best = NeuralLM.from_checkpoint(saved)
        saved.metadata["metrics"]["train_nll"] = evaluate_nll(best, self.train_eval_batches)
        checkpoint.save(self.out, saved)

    def _log(self, message: str) -> None:
        if self.quiet:
            print(message)
        else:
            tqdm.write(message)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.model == "markov":  # counted, not trained by gradient: its own short path
        return markov.train_cli(args, args.out or MODELS_DIR / "markov.npz", TrainConfig())
    try:
        cfg = resolve_config(args)
        conditioned = cfg.condition != "none"
        data = args.data or (DEFAULT_STATES_CSV if conditioned else DEFAULT_NAMES)
        out = args.out or MODELS_DIR / f"{cfg.model}{'_estado' if conditioned else ''}.npz"
        trainer = Trainer(cfg, data, out, resume=args.resume, quiet=args.quiet)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("configuration:", ", ".join(f"{k}={v}" for k, v in asdict(cfg).items()))
    print(f"data: {data} ({trainer.split.description}); vocabulary {len(trainer.model.vocab)} "
          f"tokens; {trainer.model.n_params:,} parameters; writing {out}")
    try:
        # one BLAS thread: these small matmuls gain nothing from two, and on shared cores the
        # second thread's busy-waiting makes training 5-10x slower
        with threadpool_limits(limits=1, user_api="blas"):
            best = trainer.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted: {out} holds the best model so far "
              f"(epoch {trainer.best['epoch']}, val NLL {trainer.best['val_nll']:.4f})"
              if trainer.best["epoch"] else "\ninterrupted before any checkpoint was written",
              file=sys.stderr)
        return 130
    print(f"best validation NLL {best['val_nll']:.4f} nats/char at epoch {best['epoch']} "
          f"({trainer.seconds:.1f} s of training); saved to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
