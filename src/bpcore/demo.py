"""The Quick-start demo: train on scikit-learn's bundled digits, print accuracy and time.

Run with ``python -m bpcore.demo``. No downloads: the digits ship with
scikit-learn. Trains the same network with bpcore's core API and with
scikit-learn's MLPClassifier (same initial weights, same shuffles) and prints
both, so the speedup is measured in the same run.
"""
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from threadpoolctl import threadpool_limits

import bpcore


def main(epochs=30, hidden=100, batch_size=32, seed=0):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=seed,
                                              stratify=y)
    Y_tr = np.eye(10)[y_tr]
    print(f"digits: {X_tr.shape[0]} train / {X_te.shape[0]} test samples, 64 features, "
          f"10 classes; network 64-{hidden}-10 relu, Adam, batch {batch_size}, "
          f"{epochs} epochs, 1 BLAS thread")

    with threadpool_limits(1):
        rs = np.random.RandomState(seed)
        net = bpcore.Network([64, hidden, 10], activation="relu", output="softmax",
                             loss="log_loss", random_state=rs)
        t0 = time.perf_counter()
        losses = bpcore.train(net, X_tr, Y_tr, optimizer=bpcore.Adam(learning_rate=1e-3),
                              epochs=epochs, batch_size=batch_size, random_state=rs,
                              alpha=1e-4)
        t_bp = time.perf_counter() - t0
        acc_bp = float((net.forward(X_te).argmax(axis=1) == y_te).mean())

        sk = SkMLPClassifier((hidden,), solver="adam", batch_size=batch_size,
                             max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1,
                             random_state=seed)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sk.fit(X_tr, y_tr)
        t_sk = time.perf_counter() - t0
        acc_sk = float(sk.score(X_te, y_te))

    print(f"bpcore       : test accuracy {acc_bp:.4f}, final loss {losses[-1]:.6f}, "
          f"{t_bp:.3f} s ({1e3 * t_bp / epochs:.2f} ms/epoch)")
    print(f"scikit-learn : test accuracy {acc_sk:.4f}, final loss {sk.loss_curve_[-1]:.6f}, "
          f"{t_sk:.3f} s ({1e3 * t_sk / epochs:.2f} ms/epoch)")
    rel = abs(losses[-1] - sk.loss_curve_[-1]) / abs(sk.loss_curve_[-1])
    print(f"speedup {t_sk / t_bp:.1f}x; final losses agree to {rel:.1e} (relative)")


if __name__ == "__main__":
    main()
