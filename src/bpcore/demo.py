"""The Quick-start demo: the one-line switch from scikit-learn to bpcore.

Run with ``python -m bpcore.demo``. Trains the same ``MLPClassifier`` — same
parameters, same ``random_state`` — from scikit-learn and from bpcore on
scikit-learn's bundled digits (no downloads), and prints accuracy, time, the
speedup and how closely the two loss curves agree.
"""
from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from threadpoolctl import threadpool_limits

from bpcore import MLPClassifier


def _fit(cls: type[Any], X: np.ndarray, y: np.ndarray, **params: Any) -> tuple[Any, float]:
    model = cls(**params)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model, time.perf_counter() - t0


def main(max_iter: int = 30, seed: int = 0) -> None:
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=seed,
                                              stratify=y)
    params = dict(hidden_layer_sizes=(100,), batch_size=32, max_iter=max_iter,
                  random_state=seed)
    print(f"digits: {X_tr.shape[0]} train / {X_te.shape[0]} test samples, 64 features, "
          f"10 classes; MLPClassifier({params}), 1 thread")

    with threadpool_limits(1):
        sk, t_sk = _fit(SklearnMLPClassifier, X_tr, y_tr, **params)
        bp, t_bp = _fit(MLPClassifier, X_tr, y_tr, **params)
    for name, model, t in (("scikit-learn", sk, t_sk), ("bpcore", bp, t_bp)):
        print(f"{name:>13}: test accuracy {model.score(X_te, y_te):.4f}, "
              f"{model.n_iter_} epochs, final loss {model.loss_:.6f}, {t:.3f} s")
    curve_sk, curve_bp = np.asarray(sk.loss_curve_), np.asarray(bp.loss_curve_)
    rel = np.max(np.abs(curve_bp - curve_sk) / np.abs(curve_sk))
    same = np.array_equal(sk.predict(X_te), bp.predict(X_te))
    print(f"speedup {t_sk / t_bp:.1f}x; loss curves agree to {rel:.1e} (relative); "
          f"test predictions identical: {same}")


if __name__ == "__main__":
    main()
