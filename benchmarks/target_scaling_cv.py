"""Issue 28's acceptance run: the tabular recipe on raw regression targets.

3-fold cross-validated R^2 (KFold, shuffled with the seed; mean over seeds
0-2) of scikit-learn's ``MLPRegressor()`` at its defaults and of the issue's
recipe as ``NeuralNetRegressor`` with ``target_scaling='auto'`` (the
default: it scales, the toolbox being on), with ``target_scaling=None`` (y as
it is) and wrapped in ``TransformedTargetRegressor(transformer=
StandardScaler())`` (the by-hand fix 'auto' replaces). Features are
standardized; targets are raw: diabetes (mean 152, sd 77) and a generated
``make_regression`` target moved to mean 1000, sd 10.

    python benchmarks/target_scaling_cv.py [--out results/target_scaling_cv.md]
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes, make_regression
from sklearn.model_selection import KFold, cross_val_score
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler

import bpcore

RECIPE = dict(hidden_layer_sizes=(256, 256), batch_norm=True, dropout=0.2, solver="adamw",
              learning_rate="cosine", weight_decay=1e-2, batch_size=128, max_iter=100,
              early_stopping=True, n_iter_no_change=10)
SEEDS = (0, 1, 2)


def datasets():
    X, y = load_diabetes(return_X_y=True)
    yield "diabetes (raw y: mean 152, sd 77)", StandardScaler().fit_transform(X), y
    X, y = make_regression(n_samples=2000, n_features=20, n_informative=10, noise=20.0,
                           random_state=0)
    y = 1000 + 10 * (y - y.mean()) / y.std()
    yield "make_regression, y mean 1000, sd 10", StandardScaler().fit_transform(X), y


def contenders():
    nn = bpcore.NeuralNetRegressor
    yield "scikit-learn MLPRegressor()", lambda s: MLPRegressor(random_state=s)
    yield "recipe, target_scaling='auto' (default)", lambda s: nn(random_state=s, **RECIPE)
    yield "recipe, target_scaling=None", lambda s: nn(random_state=s, target_scaling=None,
                                                      **RECIPE)
    yield "recipe in TransformedTargetRegressor", lambda s: TransformedTargetRegressor(
        nn(random_state=s, target_scaling=None, **RECIPE), transformer=StandardScaler())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="also write the table (markdown) to this file")
    args = ap.parse_args()
    lines = ["| data | model | 3-fold CV R^2, mean over seeds | per seed (0, 1, 2) |",
             "|---|---|---|---|"]
    for name, X, y in datasets():
        for label, make in contenders():
            per = []
            for s in SEEDS:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")     # ConvergenceWarning, far-target advice
                    per.append(cross_val_score(make(s), X, y, scoring="r2",
                                               cv=KFold(3, shuffle=True, random_state=s)).mean())
            lines.append(f"| {name} | {label} | {np.mean(per):.4f} | "
                         + ", ".join(f"{p:.4f}" for p in per) + " |")
            print(lines[-1], flush=True)
    if args.out:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        with open(args.out, "w") as f:
            f.write(f"# benchmarks/target_scaling_cv.py\n\nRun {stamp}, bpcore "
                    f"{bpcore.__version__}.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
