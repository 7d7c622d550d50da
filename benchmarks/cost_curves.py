"""How sampling and training time grow: with the names asked for, the hidden size, the members.

    python benchmarks/cost_curves.py                     # prints the curves, writes the plot
    python benchmarks/cost_curves.py --rounds 3 --svg docs/curvas-de-costo.svg --no-training

Four curves, each point min / median / max over alternating rounds (the order of the points
flips every round, so a slow minute on this shared machine does not bend one end of a curve),
with a fixed float32 matmul's GFLOP/s measured in every round as the machine reference:

1. ``sample_names`` wall time for n = 1 ... 10,000 names (novelty filter and nearest real name
   included) with one 1x160 LSTM (the first member of the ensemble, ``--ensemble``), with that
   ensemble, and with the served lstm (``--model``, one student network) when it is another model.
2. A sampling step (µs, thread CPU time) at 10 and 1,000 rows against the hidden size, for an
   LSTM like the served one (embedding 64, one layer) with random weights: a step's cost does
   not depend on what the weights learnt, and their end token is made impossible (left alone,
   random weights end about half the rows early), so every row runs all 41 steps.
3. The same step against the number of ensemble members (1x160 each, stacked, ``app.lm.stacked``).
4. Seconds per training epoch (whole epochs, the default LSTM configuration of ``app.train``
   with only ``--hidden`` changed, one BLAS thread, after an untimed warm-up epoch) against the
   hidden size.

One BLAS thread throughout, as the service runs (the nearest-name search of 500 names or more
uses both cores). The plot is one SVG of four panels (log y axes) drawn with ``app.web.pages.charts``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: make `app` importable
    sys.path.insert(0, str(ROOT))

from app.data.corpus import BOUNDARY, DEFAULT_NAMES, length_bucketed_batches  # noqa: E402
from app.data.gazetteer import load_gazetteer  # noqa: E402
from app.generation.drawing import draw  # noqa: E402
from app.generation.sampling import sample_names  # noqa: E402
from app.lm.base import load_model  # noqa: E402
from app.lm.ensemble import EnsembleLM  # noqa: E402
from app.lm.neural import NeuralLM  # noqa: E402
from app.nn import network  # noqa: E402
from app.nn.optim import clip_global_norm  # noqa: E402
from app.nn.recurrent import Workspace  # noqa: E402
from app.train import build_parser, resolve_config  # noqa: E402
from app.training.student import teacher_ensemble  # noqa: E402
from app.training.trainer import Trainer  # noqa: E402
from app.web.pages.charts import Series, line_chart  # noqa: E402

NAMES = (1, 10, 100, 1000, 10000)
HIDDEN = (64, 128, 160, 256, 384, 512)
MEMBERS = (1, 2, 3, 4, 5, 6, 8)
STEP_ROWS = (10, 1000)
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")


def seeds_for(n: int) -> int:
    """Seeds per round for n names: fewer for the big requests, which vary less."""
    return 10 if n <= 10 else 4 if n <= 100 else 2 if n <= 1000 else 1


def sampling_ms(model, n: int) -> float:
    """Median wall ms of ``sample_names`` for n names over a few seeds."""
    wall = []
    for seed in range(seeds_for(n)):
        start = time.perf_counter()
        sample_names(model, n, np.random.default_rng(seed))
        wall.append((time.perf_counter() - start) * 1000)
    return statistics.median(wall)


def step_us(model, rows: int) -> float:
    """Thread CPU µs per step of drawing ``rows`` sequences (the median of a few draws)."""
    per_step = []
    for seed in range(5 if rows <= 100 else 1):
        start = time.thread_time()
        names, _ = draw(model, rows, "", 40, 0.8, None, np.random.default_rng(seed))
        seconds = time.thread_time() - start
        per_step.append(seconds / max(41 if s is None else len(s) + 1 for s in names) * 1e6)
    return statistics.median(per_step)


def random_lstm(hidden: int, seed: int, vocab) -> NeuralLM:
    """A read-only LSTM like the served one (embedding 64, one layer) with random weights that
    never end a name: a draw drops the rows that ended, and random weights end ~46 % of them
    before 41 steps, so a step would be timed on fewer rows than it says."""
    config = network.ModelConfig(kind="lstm", vocab_size=len(vocab), hidden=hidden, embed=64)
    params = network.init_params(config, np.random.default_rng(seed))
    params["out.b"][vocab.index[BOUNDARY]] = -1e4   # the end token's probability: exp(-1e4) = 0
    for p in params.values():
        p.flags.writeable = False   # as loaded from a checkpoint: step tables built once
    return NeuralLM(config, params, vocab)


class EpochTimer:
    """Whole training epochs of ``app.train``'s default LSTM with another hidden size, after an
    untimed warm-up epoch (the first one allocates the step's work buffers)."""

    def __init__(self, hidden: int):
        cfg = resolve_config(build_parser().parse_args(["--model", "lstm", "--hidden", str(hidden)]))
        out = Path(tempfile.gettempdir()) / "toponimo-cost-curves.npz"   # never written
        self.trainer = Trainer(cfg, DEFAULT_NAMES, out, quiet=True)
        encoded = self.trainer.train_encoded
        self.norm = sum(len(ids) + 1 for ids in encoded) / math.ceil(len(encoded) / cfg.batch_size)
        self.work = Workspace()
        self.train(*self.batches(0))   # warm-up: epoch 0, as app.train's numbering starts at 1
        self.epoch = 0

    def seconds(self) -> float:
        """Wall seconds of the next epoch (its batches drawn before the clock starts)."""
        self.epoch += 1
        batches, rng = self.batches(self.epoch)
        start = time.perf_counter()
        self.train(batches, rng)
        return time.perf_counter() - start

    def batches(self, epoch: int) -> tuple[list, np.random.Generator]:
        """Epoch ``epoch``'s batches as app.train draws them, and the generator for its dropout."""
        cfg = self.trainer.cfg
        rng = np.random.default_rng([cfg.seed, epoch])
        return length_bucketed_batches(self.trainer.train_encoded, cfg.batch_size, rng), rng

    def train(self, batches: list, rng: np.random.Generator) -> None:
        """A training step on every batch: loss, gradients, clipping, Adam, weight average."""
        t, cfg, model = self.trainer, self.trainer.cfg, self.trainer.model
        for batch in batches:
            _, grads, _ = network.loss_and_grads(model.config, model.params, batch,
                                                 norm=self.norm, rng=rng, work=self.work)
            clip_global_norm(grads, cfg.clip)
            t.optimizer.step(model.params, grads)
            if t.average:
                t.average.update(model.params)


def reference_gflops() -> float:
    """GFLOP/s of a (1000, 160) x (160, 640) float32 matmul: how fast the machine is now."""
    rng = np.random.default_rng(0)
    h, W = (rng.standard_normal(s).astype(np.float32) for s in ((1000, 160), (160, 640)))
    best = math.inf
    for _ in range(30):
        start = time.perf_counter()
        h @ W
        best = min(best, time.perf_counter() - start)
    return 2 * h.size * W.shape[1] / best / 1e9


def run_rounds(points: dict[tuple, Callable[[], float]], rounds: int,
               reference: list[float]) -> dict[tuple, list[float]]:
    """Every point once per round, in an order that flips each round."""
    keys = list(points)
    results: dict[tuple, list[float]] = {k: [] for k in keys}
    for r in range(rounds):
        reference.append(reference_gflops())
        for key in keys if r % 2 == 0 else keys[::-1]:
            results[key].append(points[key]())
    return results


def spread(values: list[float]) -> str:
    return f"{min(values):9.2f} / {statistics.median(values):9.2f} / {max(values):9.2f}"


def print_curve(title: str, unit: str, results: dict[tuple, list[float]]) -> None:
    print(f"\n{title} ({unit}, min / median / max over rounds)")
    for (series, x), values in results.items():
        print(f"  {series:>24} {x:>6}: {spread(values)}")


def panel(results: dict[tuple, list[float]], title: str, x_label: str, y_label: str,
          chart_id: str, log_x: bool, integer_x: bool = False) -> str:
    """A line chart of the medians, one line per series, on a log y axis (and log x if asked)."""
    def x_of(x: float) -> float:
        return math.log10(x) if log_x else x

    names = list(dict.fromkeys(series for series, _ in results))
    lines = [Series(name, [(x_of(x), math.log10(statistics.median(v)))
                           for (s, x), v in results.items() if s == name], COLORS[i % 4])
             for i, name in enumerate(names)]
    return line_chart(lines, title, x_label, y_label, x_format=_power if log_x else "{:g}".format,
                      y_format=_power, chart_id=chart_id, integer_x=integer_x)


def _power(v: float) -> str:
    """A log10 tick as the value it stands for, to two significant digits (3.2, 1,000)."""
    return f"{float(f'{10 ** v:.2g}'):,g}"


def write_svg(path: Path, panels: list[str], caption: str) -> None:
    """The panels side by side, two per row, as one standalone SVG with its own styles."""
    width, height = 440, 340
    style = ("<style>text{font:13px sans-serif;fill:#222}.titulo{font-size:15px;font-weight:600}"
             ".etiqueta{fill:#555}.eje{stroke:#222}.rejilla{stroke:#ece6da}.leyenda{fill:#222}"
             "</style>")
    rows = math.ceil(len(panels) / 2)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {2 * width} '
           f'{rows * height + 30}" width="{2 * width}" height="{rows * height + 30}">',
           style, '<rect width="100%" height="100%" fill="#fff"/>']
    for i, panel in enumerate(panels):
        x, y = (i % 2) * width, (i // 2) * height
        out.append(panel.replace('<svg class="grafica" ',
                                 f'<svg x="{x}" y="{y}" width="{width}" height="{height}" '
                                 'overflow="visible" ', 1))   # a last tick label may stick out
    out.append(f'<text x="12" y="{rows * height + 20}" class="etiqueta">{caption}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models/lstm.npz",
                        help="the served lstm (default: models/lstm.npz)")
    parser.add_argument("--ensemble", type=Path,
                        help="a cross-fitted ensemble; its first member is the single LSTM "
                             "(default: the served student's, in models/teachers/, or --model "
                             "itself if it is an ensemble)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default: 3)")
    parser.add_argument("--svg", type=Path, default=ROOT / "docs/curvas-de-costo.svg")
    parser.add_argument("--no-training", action="store_true", help="skip the training curve")
    args = parser.parse_args()
    threadpool_limits(limits=1, user_api="blas")
    served = load_model(args.model)
    path = args.ensemble or teacher_ensemble(args.model, served)
    ensemble = load_model(path) if path else served
    if ensemble.kind != "ensemble":
        sys.exit(f"error: {path or args.model} is not an ensemble; pass one with --ensemble")
    single = ensemble.components[0]
    load_gazetteer()
    reference: list[float] = []

    models = {"1 LSTM 1x160": single, f"{len(ensemble.components)} LSTM 1x160": ensemble}
    if served.kind != "ensemble":   # the served student: one wider network
        models[f"la servida: 1 LSTM {served.config.layers}x{served.config.hidden}"] = served
    for model in models.values():
        sample_names(model, 10, np.random.default_rng(0))   # warm-up: step tables, caches
    by_n = run_rounds({(label, n): (lambda m=m, n=n: sampling_ms(m, n))
                       for label, m in models.items() for n in NAMES}, args.rounds, reference)
    print_curve("sample_names against n", "ms", by_n)

    lstms = {h: random_lstm(h, 0, single.vocab) for h in HIDDEN}
    by_hidden = run_rounds({(f"paso, {rows} filas", h): (lambda m=lstms[h], r=rows: step_us(m, r))
                            for rows in STEP_ROWS for h in HIDDEN}, args.rounds, reference)
    print_curve("a sampling step against the hidden size", "us", by_hidden)

    members = [random_lstm(160, seed, single.vocab) for seed in range(max(MEMBERS))]
    ensembles = {k: EnsembleLM(members[:k]) for k in MEMBERS}
    by_members = run_rounds({(f"paso, {rows} filas", k): (lambda m=ensembles[k], r=rows:
                                                          step_us(m, r))
                             for rows in STEP_ROWS for k in MEMBERS}, args.rounds, reference)
    print_curve("a sampling step against the ensemble size (1x160 members)", "us", by_members)

    panels = [panel(by_n, "Generar n nombres", "nombres (escala log)", "ms (escala log)",
                    "costo-n", log_x=True),
              panel(by_hidden, "Un paso de muestreo, 1 LSTM", "neuronas ocultas H",
                    "µs (escala log)", "costo-oculto", log_x=False),
              panel(by_members, "Un paso, conjunto apilado (H = 160)", "miembros",
                    "µs (escala log)", "costo-miembros", log_x=False, integer_x=True)]
    if not args.no_training:
        timers = {h: EpochTimer(h) for h in HIDDEN}
        by_epoch = run_rounds({("época de entrenamiento", h): timers[h].seconds for h in HIDDEN},
                              args.rounds, reference)
        print_curve("one training epoch against the hidden size", "s", by_epoch)
        panels.append(panel(by_epoch, "Entrenar una época, 1 LSTM", "neuronas ocultas H",
                            "s (escala log)", "costo-epoca", log_x=False))
    load = os.getloadavg()[0]
    print(f"\n{args.rounds} alternating rounds per curve; load average {load:.1f} on "
          f"{os.cpu_count()} cores; machine reference per round (min / median / max): "
          f"matmul {spread(reference)} GFLOP/s")
    caption = (f"Medianas de {args.rounds} rondas alternadas; referencia de la máquina "
               f"{statistics.median(reference):.0f} GFLOP/s (mediana), carga {load:.1f} "
               f"en {os.cpu_count()} núcleos.")
    write_svg(args.svg, panels, caption)
    print(f"plot: {args.svg}")


if __name__ == "__main__":
    main()
