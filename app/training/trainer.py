"""One training run of an RNN or LSTM: data, model, optimiser, and the loop with early stopping.

    python -m app.train --model lstm        # the CLI (app/train.py) builds and runs a Trainer

Each time validation improves, the checkpoint is written atomically to ``out`` (a run file, see
``app.training.promote``), so Ctrl-C or a crash leaves the best model so far there, never half a file.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from app.data.corpus import (
    NO_SCORABLE_VALIDATION,
    DataError,
    Split,
    Vocabulary,
    data_sha256,
    learned_rows,
    length_bucketed_batches,
    read_corpus,
    split_names,
)
from app.lm import checkpoint
from app.lm.base import load_checkpoint, load_model
from app.lm.neural import NeuralLM
from app.nn import network
from app.nn.network import ModelConfig
from app.nn.optim import OPTIMIZERS, WeightAverage, clip_global_norm
from app.nn.recurrent import Workspace
from app.training.conditions import condition_ids, condition_metadata
from app.training.config import TrainConfig
from app.training.memory import check_memory
from app.training.resume import LIVE, resume

EVAL_BATCH = 256


def evaluate_nll(model, batches) -> float:
    """Mean NLL per predicted token (nats) over batches, dropout off."""
    total = sum(float(model.token_nll(b).sum()) for b in batches)
    return total / sum(b.n_tokens for b in batches)


def nll_scorer(batches) -> Callable[[Path], float]:
    """score(path): the NLL of the checkpoint at ``path`` on ``batches``, for app.training.promote."""
    return lambda path: evaluate_nll(load_model(path), batches)


class Trainer:
    """One training run: data, model, optimiser, and the loop with early stopping."""

    def __init__(self, cfg: TrainConfig, data: Path, out: Path, resume_from: Path | None = None,
                 quiet: bool = False, split: Split | None = None, vocab: Vocabulary | None = None,
                 label: str = "", threads: int = 1):
        """``out``: where every improvement is saved; ``resume_from``: a checkpoint to go on from.

        ``split`` replaces the validation split ``cfg`` describes, and ``vocab`` the one read
        from the training names (an ensemble's members train on other folds but share one);
        ``label`` prefixes every line logged (members training side by side); ``threads`` > 1
        gives the training step a helper thread (``Workspace``): sooner, the same numbers.
        """
        self.cfg, self.out, self.quiet, self.label = cfg, out, quiet, label
        self.threads = threads
        corpus = read_corpus(data)
        if cfg.condition == "estado" and corpus.states is None:
            raise DataError(f"--condition estado needs a CSV with an estado column; {data} has none")
        self.split = split or split_names(corpus.names, cfg.val_fraction, cfg.seed,
                                          strata=corpus.states)
        self.data_info = {"data_path": str(data), "data_sha256": data_sha256(corpus.names),
                          "split": self.split.description}
        self.conditions = condition_metadata(corpus) if cfg.condition == "estado" else {}
        if resume_from:
            self._resume(resume_from)
        else:
            vocab = vocab or Vocabulary.from_names(self.split.train)
            config = ModelConfig(kind=cfg.model, vocab_size=len(vocab), hidden=cfg.hidden,
                                 layers=cfg.layers, embed=cfg.embed, dropout=cfg.dropout,
                                 locked_dropout=cfg.locked_dropout, weight_drop=cfg.weight_drop,
                                 embed_dropout=cfg.embed_dropout,
                                 conditions=len(self.conditions.get("conditions", [])),
                                 cond_embed=cfg.cond_embed if self.conditions else 0)
            check_memory(config, max(map(len, self.split.train)), max(cfg.batch_size, EVAL_BATCH))
            params = network.init_params(config, np.random.default_rng(cfg.seed))
            self.model = NeuralLM(config, params, vocab, dict(self.conditions))
            self.optimizer = OPTIMIZERS[cfg.optimizer](params, lr=cfg.lr,
                                                       weight_decay=cfg.weight_decay)
            self._average_from(params)
            self.history: list[dict] = []
            self.best = {"val_nll": math.inf, "epoch": 0}
            self.seconds = 0.0
        vocab = self.model.vocab
        cond_ids = condition_ids(self.conditions, corpus)
        # a conditioned model keeps every (name, state) pair: a shared name is one per state
        kept = learned_rows(self.split.train, cfg.repeats or bool(self.conditions))
        self.train_encoded = [vocab.encode(self.split.train[i]) for i in kept]
        self.train_cond = cond_ids and [cond_ids[self.split.train_index[i]] for i in kept]
        self.train_soft = None      # per name, the distributions to learn instead (app.distill)
        self.extra_metadata: dict = {}   # saved in every checkpoint (app.distill's summary)
        val = [(vocab.encode(corpus.names[i]), cond_ids and cond_ids[i])
               for i in self.split.val_index if not vocab.unknown(corpus.names[i])]
        self.n_val_names = len(val)
        self.val_skipped = len(self.split.val) - len(val)
        self.val_batches = length_bucketed_batches(
            [ids for ids, _ in val], EVAL_BATCH, cond=cond_ids and [c for _, c in val])
        self.train_eval_batches = length_bucketed_batches(self.train_encoded, EVAL_BATCH,
                                                          cond=self.train_cond)

    def _average_from(self, params: dict[str, np.ndarray]) -> None:
        """Start the weight average at ``params``; ``self.scored`` is the model evaluated and
        saved: the average's, or the trained one itself when averaging is off."""
        model = self.model
        self.average = WeightAverage(params, self.cfg.ema) if self.cfg.ema else None
        self.scored = (NeuralLM(model.config, self.average.params, model.vocab, model.metadata)
                       if self.average else model)

    def _resume(self, source: Path) -> None:
        saved = resume(source, self.cfg, self.data_info["data_sha256"])
        self.model, self.optimizer = saved.model, saved.optimizer
        self._average_from(saved.saved_params)
        self.history, self.best, self.seconds = saved.history, saved.best, saved.seconds

    def run(self) -> dict:
        if not self.n_val_names:   # nothing would measure the epochs (a student's: set by now)
            raise DataError(NO_SCORABLE_VALIDATION)
        cfg, model = self.cfg, self.model
        n_tokens = sum(len(ids) + 1 for ids in self.train_encoded)
        n_batches = math.ceil(len(self.train_encoded) / cfg.batch_size)
        norm = n_tokens / n_batches  # a constant: long and short names weigh per character
        start_epoch = len(self.history) + 1
        lr_scale = self.history[-1]["lr_scale"] if self.history else 1.0
        work = Workspace(self.threads)  # the training step's buffers, reused by every batch
        for epoch in range(start_epoch, cfg.epochs + 1):
            if epoch - self.best["epoch"] > cfg.patience:
                break
            rng = np.random.default_rng([cfg.seed, epoch])
            batches = length_bucketed_batches(self.train_encoded, cfg.batch_size, rng,
                                              cond=self.train_cond, soft=self.train_soft)
            started, total, seen = time.perf_counter(), 0.0, 0
            bar = tqdm(batches, desc=f"epoch {epoch:3d}", disable=self.quiet, leave=False,
                       unit="batch", dynamic_ncols=True)
            for i, batch in enumerate(bar, 1):
                loss, grads, _ = network.loss_and_grads(model.config, model.params, batch,
                                                        norm=norm, rng=rng, work=work)
                clip_global_norm(grads, cfg.clip)
                self.optimizer.step(model.params, grads, lr_scale, work)
                if self.average:
                    self.average.update(model.params, work)
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
        meta = {**self.data_info, **self.conditions, **self.extra_metadata,
                "train_config": asdict(self.cfg),
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
        message = f"{self.label}: {message}" if self.label else message
        if self.quiet:
            print(message)
        else:
            tqdm.write(message)
