"""What the toolbox buys on scikit-learn's bundled datasets.

For digits, breast cancer, wine (accuracy) and diabetes (R^2): scikit-learn's
MLP, bpcore's drop-in (the same numbers, faster) and a few toolbox
configurations of NeuralNetClassifier / NeuralNetRegressor. Each is fitted on
a stratified 75/25 split (standardized inputs) with the same random_state;
the table gives the held-out score (mean over ``--seeds`` seeds) and the fit
time (median), side by side.

Diabetes runs twice: ``diabetes`` with the target standardized by hand (as
scikit-learn's MLP needs) and ``diabetes_raw`` on the raw target (mean 152,
sd 77), where the toolbox regressors scale it themselves
(``target_scaling='auto'``, issue 28); both add the issue's tabular recipe.

    python benchmarks/toolbox_datasets.py [--seeds 3] [--quick]
        [--datasets diabetes,diabetes_raw] [--out results/toolbox_datasets.md]
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.preprocessing import StandardScaler

import bpcore

DATASETS = {
    "digits": (load_digits, "clf"),
    "breast_cancer": (load_breast_cancer, "clf"),
    "wine": (load_wine, "clf"),
    "diabetes": (load_diabetes, "reg"),
    "diabetes_raw": (load_diabetes, "reg"),
}

# Issue 28's recipe for tabular regression (its own width and epochs).
RECIPE = dict(hidden_layer_sizes=(256, 256), batch_norm=True, dropout=0.2, solver="adamw",
              learning_rate="cosine", weight_decay=1e-2, batch_size=128, max_iter=100,
              early_stopping=True, n_iter_no_change=10)

COMMON = dict(hidden_layer_sizes=(128, 128), max_iter=300)

# Seconds of quiet before every timed fit. After a threaded BLAS call (a
# scikit-learn fit, which runs its products on OpenBLAS's threads) OpenBLAS
# keeps its threads spinning for ~0.1 s, and a 2-thread fit started inside
# that window shares a core with them: wine's drop-in fit measured 0.11 s
# right after scikit-learn's and 0.024 s after its own (docs/DESIGN.md,
# "OpenBLAS's spinning threads"). Every contender gets the same pause.
SETTLE = 0.2


def contenders(kind):
    """(label, factory(seed)) for one kind of task."""
    if kind == "clf":
        sk, dropin, tb = SkMLPClassifier, bpcore.MLPClassifier, bpcore.NeuralNetClassifier
    else:
        sk, dropin, tb = SkMLPRegressor, bpcore.MLPRegressor, bpcore.NeuralNetRegressor
    yield "sklearn MLP", lambda s: sk(random_state=s, **COMMON)
    yield "bpcore drop-in", lambda s: dropin(random_state=s, **COMMON)
    yield "AdamW + cosine", lambda s: tb(solver="adamw", learning_rate="cosine",
                                         learning_rate_init=3e-3, random_state=s, **COMMON)
    yield "BN + dropout 0.2 + AdamW", lambda s: tb(
        solver="adamw", batch_norm=True, dropout=0.2, learning_rate_init=3e-3,
        random_state=s, **COMMON)
    yield "early stop (restore best)", lambda s: tb(
        early_stopping=True, n_iter_no_change=20, learning_rate_init=3e-3, random_state=s,
        **COMMON)
    if kind == "reg":
        yield "Huber + residual + clip", lambda s: tb(
            loss="huber", residual=True, clip_norm=5.0, learning_rate_init=3e-3,
            random_state=s, **COMMON)
        yield "issue-28 recipe (256x256 BN/dropout/AdamW/cosine/ES)", lambda s: tb(
            random_state=s, **RECIPE)
    else:
        yield "residual + NAdam + onecycle", lambda s: tb(
            residual=True, solver="nadam", learning_rate="onecycle", learning_rate_init=1e-2,
            random_state=s, **COMMON)


def load(name):
    loader, kind = DATASETS[name]
    X, y = loader(return_X_y=True)
    strat = y if kind == "clf" else None
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0,
                                          stratify=strat)
    sc = StandardScaler().fit(Xtr)
    Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)
    if name == "diabetes":
        mu, sd = ytr.mean(), ytr.std()
        ytr, yte = (ytr - mu) / sd, (yte - mu) / sd
    return kind, Xtr, Xte, ytr, yte


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="max_iter=20, one seed")
    ap.add_argument("--datasets", default=",".join(DATASETS),
                    help="comma-separated subset of " + ", ".join(DATASETS))
    ap.add_argument("--out", help="also write the table (markdown) to this file")
    args = ap.parse_args()
    names = args.datasets.split(",")
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        ap.error(f"unknown datasets {unknown}; choose from {', '.join(DATASETS)}")
    seeds = 1 if args.quick else args.seeds
    if args.quick:
        COMMON["max_iter"] = 20
    warnings.simplefilter("ignore", ConvergenceWarning)
    rows = []
    for name in names:
        kind, Xtr, Xte, ytr, yte = load(name)
        base_time = None
        for label, make in contenders(kind):
            scores, times, iters = [], [], []
            for s in range(seeds):
                est = make(s)
                time.sleep(SETTLE)
                t0 = time.perf_counter()
                est.fit(Xtr, ytr)
                times.append(time.perf_counter() - t0)
                scores.append(est.score(Xte, yte))
                iters.append(est.n_iter_)
            t = float(np.median(times))
            base_time = base_time or t
            rows.append((name, "accuracy" if kind == "clf" else "R^2", label,
                         float(np.mean(scores)), float(np.std(scores)), int(np.median(iters)),
                         t, base_time / t))
            print(f"{name:14s} {label:28s} {rows[-1][3]:.4f}", flush=True)
    lines = ["| dataset | contender | held-out score (mean ± sd) | epochs | fit time (s) "
             "| speed vs sklearn |", "|---|---|---|---|---|---|"]
    for name, metric, label, mean, sd, it, t, ratio in rows:
        lines.append(f"| {name} ({metric}) | {label} | {mean:.4f} ± {sd:.4f} | {it} "
                     f"| {t:.3f} | {ratio:.1f}x |")
    print()
    print("\n".join(lines))
    if args.out:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        with open(args.out, "w") as f:
            f.write(f"# benchmarks/toolbox_datasets.py --seeds {seeds} --datasets "
                    f"{','.join(names)}\n\nRun {stamp}, bpcore {bpcore.__version__}.\n\n"
                    + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
