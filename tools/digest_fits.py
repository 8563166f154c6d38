"""Print one SHA-256 per training case: the bitwise fingerprint of a refactor.

Trains a broad matrix of fits (every driver: the row split, the unit split,
full batch / L-BFGS, ``loss_and_grad`` and inference; float32 and float64;
1 and 2 threads; dense and sparse X; every optimizer; L2, L1, max-norm,
gradient clipping; batch norm, dropout, residual skips; a per-step schedule;
sample weights; the drop-ins' parity configurations) and prints, per case,
``<name> <sha256>`` of the resulting parameters, buffers, outputs and loss
curves. Run it on two checkouts and diff the outputs: a refactor that keeps
results bitwise the same prints the same lines.

    PYTHONPATH=/work/baseline/src python tools/digest_fits.py > before.txt
    PYTHONPATH=src python tools/digest_fits.py > after.txt
    diff before.txt after.txt && wc -l after.txt

``--only SUBSTRING`` runs the cases whose name contains it.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import warnings

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

import bpcore
from bpcore import (SGD, AdaGrad, Adam, AdamW, NAdam, Network, RMSProp, RPROP, LBFGS,
                    MLPClassifier, MLPRegressor, NeuralNetClassifier, NeuralNetRegressor, train)
from bpcore.schedules import OneCycleLR

OPTIMIZERS = {
    "sgd": lambda: SGD(0.05, momentum=0.9),
    "sgd_nesterov": lambda: SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: Adam(1e-2),
    "adamw": lambda: AdamW(1e-2),
    "nadam": lambda: NAdam(1e-2),
    "rmsprop": lambda: RMSProp(1e-3),
    "adagrad": lambda: AdaGrad(1e-2),
    "rprop": lambda: RPROP(1e-3),
}

# Two shapes: with 2 threads, the first takes the unit split (one hidden
# layer, batch 32), the second the row split (batch 200); deep networks at
# batch 32 take the unit split too (deep-units-*).
UNITS = dict(sizes=[32, 128, 5], n=320, batch_size=32)
ROWS = dict(sizes=[64, 100, 10], n=600, batch_size=200)


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def data(shape, dtype, seed=0, sparse=False, classes=True):
    rng = np.random.default_rng(seed)
    n, n0, k = shape["n"], shape["sizes"][0], shape["sizes"][-1]
    X = rng.standard_normal((n, n0))
    if sparse:
        X[rng.random(X.shape) < 0.8] = 0.0
        X = sp.csr_matrix(X)
    if classes:
        Y = np.eye(k)[rng.integers(0, k, n)]
    else:
        Y = rng.standard_normal((n, k))
    return X, Y.astype(dtype)


def fit(shape, dtype, threads, *, sparse=False, opt="adam", epochs=3, net_kw=None,
        train_kw=None, schedule=None, weighted=False):
    X, Y = data(shape, dtype, sparse=sparse)
    net = Network(shape["sizes"], output="softmax", loss="log_loss", dtype=dtype,
                  random_state=0, **(net_kw or {}))
    kw = dict(train_kw or {})
    if weighted:
        kw["sample_weight"] = np.random.default_rng(1).uniform(0.0, 2.0, X.shape[0])
    if schedule is not None:
        kw["schedule"] = schedule(shape)
    with threadpool_limits(limits=threads):
        hist = train(net, X, Y, optimizer=OPTIMIZERS[opt](), epochs=epochs,
                     batch_size=shape["batch_size"], random_state=0, **kw)
        out = net.forward(X)
    return digest(net.params, net.buffers, np.asarray(hist.loss), out)


def one_cycle(shape):
    steps = 3 * -(-shape["n"] // shape["batch_size"])
    return OneCycleLR(max_lr=0.02, total_steps=steps)


def minibatch_cases():
    for dtype in (np.float32, np.float64):
        dt = np.dtype(dtype).name
        for threads in (1, 2):
            for opt in OPTIMIZERS:
                yield (f"units/{dt}/t{threads}/{opt}",
                       lambda o=opt, d=dtype, t=threads: fit(UNITS, d, t, opt=o, train_kw={"alpha": 1e-4}))
                yield (f"rows/{dt}/t{threads}/{opt}",
                       lambda o=opt, d=dtype, t=threads: fit(ROWS, d, t, opt=o, train_kw={"alpha": 1e-4}))
                yield (f"rows-sparse/{dt}/t{threads}/{opt}",
                       lambda o=opt, d=dtype, t=threads: fit(ROWS, d, t, opt=o, sparse=True))
            rules = {
                "plain": {},
                "l2": {"alpha": 1e-3},
                "l1": {"l1": 1e-3},
                "l2+l1": {"alpha": 1e-3, "l1": 1e-4},
                "max_norm": {"max_norm": 0.5},
                "clip_norm": {"clip_norm": 0.1},
                "clip_value": {"clip_value": 0.01},
                "all": {"alpha": 1e-3, "l1": 1e-4, "max_norm": 1.0, "clip_norm": 1.0,
                        "clip_value": 0.05},
            }
            for name, kw in rules.items():
                for shape_name, shape in (("units", UNITS), ("rows", ROWS)):
                    yield (f"rule-{name}/{shape_name}/{dt}/t{threads}",
                           lambda k=kw, s=shape, d=dtype, t=threads: fit(s, d, t, train_kw=k))
                yield (f"rule-{name}/sparse/{dt}/t{threads}",
                       lambda k=kw, d=dtype, t=threads: fit(ROWS, d, t, sparse=True, train_kw=k))
            layers = {
                "bn": {"batch_norm": True},
                "dropout": {"dropout": 0.2},
                "residual": {"residual": True},
                "bn+dropout+residual": {"batch_norm": True, "dropout": 0.1, "residual": True},
            }
            deep = dict(sizes=[64, 48, 48, 10], n=600, batch_size=200)
            for name, kw in layers.items():
                for sparse in (False, True):
                    yield (f"layer-{name}/{'sparse' if sparse else 'dense'}/{dt}/t{threads}",
                           lambda k=kw, d=dtype, t=threads, s=sparse: fit(
                               deep, d, t, sparse=s, net_kw=k, train_kw={"alpha": 1e-4}))
            # With 2 threads the unit split of a deep network (since issue 25;
            # before it, one thread).
            deep_units = dict(sizes=[64, 128, 128, 10], n=320, batch_size=32)
            for name, kw in layers.items():
                yield (f"deep-units-{name}/{dt}/t{threads}",
                       lambda k=kw, d=dtype, t=threads: fit(
                           deep_units, d, t, net_kw=k, train_kw={"alpha": 1e-4}))
            for shape_name, shape in (("units", UNITS), ("rows", ROWS)):
                yield (f"onecycle/{shape_name}/{dt}/t{threads}",
                       lambda s=shape, d=dtype, t=threads: fit(s, d, t, opt="sgd",
                                                              schedule=one_cycle))
                yield (f"weighted/{shape_name}/{dt}/t{threads}",
                       lambda s=shape, d=dtype, t=threads: fit(s, d, t, weighted=True,
                                                              train_kw={"alpha": 1e-3}))
                yield (f"weighted-l1-clip/{shape_name}/{dt}/t{threads}",
                       lambda s=shape, d=dtype, t=threads: fit(
                           s, d, t, weighted=True,
                           train_kw={"alpha": 1e-3, "l1": 1e-4, "clip_norm": 0.5}))


def full_batch(dtype, threads, sparse, kw):
    X, Y = data(ROWS, dtype, sparse=sparse, classes=False)
    net = Network([64, 30, 10], dtype=dtype, random_state=0)
    sw = np.random.default_rng(2).uniform(0.0, 2.0, X.shape[0]) if kw.get("sw") else None
    with threadpool_limits(limits=threads):
        hist = train(net, X, Y, optimizer=LBFGS(max_iter=15), alpha=kw.get("alpha", 0.0),
                     l1=kw.get("l1", 0.0), random_state=0, sample_weight=sw)
        loss, grad = net.loss_and_grad(X, Y, alpha=1e-3, l1=kw.get("l1", 0.0),
                                       sample_weight=np.linspace(0.5, 1.5, X.shape[0]))
        out = net.forward(X)
    return digest(net.params, net.buffers, np.asarray(hist.loss), np.float64(loss), grad, out)


def loss_grad_training(dtype, threads):
    X, Y = data(ROWS, dtype, classes=True)
    net = Network([64, 40, 40, 10], output="softmax", loss="log_loss", dropout=0.2,
                  batch_norm=True, dtype=dtype, random_state=0)
    with threadpool_limits(limits=threads):
        loss, grad = net.loss_and_grad(X, Y, alpha=1e-3, l1=1e-4, training=True, seed=3)
    return digest(np.float64(loss), grad)


def full_batch_cases():
    for dtype in (np.float32, np.float64):
        dt = np.dtype(dtype).name
        for threads in (1, 2):
            for sparse in (False, True):
                for name, kw in (("plain", {}), ("l2", {"alpha": 1e-3}),
                                 ("l2+l1", {"alpha": 1e-3, "l1": 1e-4}), ("weighted", {"sw": True, "alpha": 1e-3})):
                    yield (f"lbfgs-{name}/{'sparse' if sparse else 'dense'}/{dt}/t{threads}",
                           lambda d=dtype, t=threads, s=sparse, k=kw: full_batch(d, t, s, k))
            yield (f"loss_and_grad-training/{dt}/t{threads}",
                   lambda d=dtype, t=threads: loss_grad_training(d, t))


def classifier_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 12))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1).astype(int)
    return X, y


def estimator(make, threads, reg=False):
    X, y = classifier_data()
    if reg:
        y = X[:, 0] * 2.0 - X[:, 3]
    with threadpool_limits(limits=threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make().fit(X, y)
        out = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
    curves = [np.asarray(getattr(est, name)) for name in ("loss_curve_", "validation_scores_")
              if getattr(est, name, None) is not None]
    return digest(*est.coefs_, *est.intercepts_, out, *curves)


def estimator_cases():
    configs = {
        "mlpc-adam": lambda: MLPClassifier((20,), max_iter=30, random_state=0),
        "mlpc-sgd": lambda: MLPClassifier((20,), solver="sgd", learning_rate="adaptive",
                                          max_iter=30, random_state=0),
        "mlpc-sgd-invscaling": lambda: MLPClassifier((20, 10), solver="sgd",
                                                     learning_rate="invscaling", max_iter=20,
                                                     random_state=0),
        "mlpc-lbfgs": lambda: MLPClassifier((20,), solver="lbfgs", max_iter=50, random_state=0),
        "mlpc-early": lambda: MLPClassifier((20,), early_stopping=True, max_iter=50,
                                            random_state=0),
        "mlpc-batch16": lambda: MLPClassifier((20,), max_iter=20, random_state=0,
                                              batch_size=16),
        "mlpr-adam": lambda: MLPRegressor(hidden_layer_sizes=(20,), max_iter=30, random_state=0),
        "mlpr-lbfgs": lambda: MLPRegressor(hidden_layer_sizes=(20,), solver="lbfgs", max_iter=50, random_state=0),
        "mlpr-early": lambda: MLPRegressor(hidden_layer_sizes=(20,), early_stopping=True, max_iter=50,
                                           random_state=0),
        "nnc-toolbox": lambda: NeuralNetClassifier((20, 20), max_iter=15, random_state=0,
                                                   dropout=0.1, batch_norm=True, l1=1e-4,
                                                   clip_norm=1.0, max_norm=2.0),
        "nnc-residual-adamw": lambda: NeuralNetClassifier((16, 16), solver="adamw",
                                                          residual=True, max_iter=15,
                                                          random_state=0),
        "nnc-early": lambda: NeuralNetClassifier((20,), early_stopping=True, max_iter=40,
                                                 random_state=0),
        "nnc-lbfgs": lambda: NeuralNetClassifier((20,), solver="lbfgs", max_iter=40,
                                                 random_state=0, l1=1e-4),
        "nnr-toolbox": lambda: NeuralNetRegressor(hidden_layer_sizes=(20,), max_iter=15, random_state=0,
                                                  clip_value=0.5, dropout=0.1),
        "nnr-huber": lambda: NeuralNetRegressor(loss="huber", hidden_layer_sizes=(20,),
                                                max_iter=15, random_state=0),
    }
    for threads in (1, 2):
        for name, make in configs.items():
            yield (f"estimator-{name}/t{threads}",
                   lambda m=make, t=threads, r=name.startswith(("mlpr", "nnr")): estimator(
                       m, t, reg=r))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args()
    n = 0
    for cases in (minibatch_cases(), full_batch_cases(), estimator_cases()):
        for name, run in cases:
            if args.only not in name:
                continue
            try:
                value = run()
            except Exception as exc:  # the error itself is the fingerprint
                value = "error " + type(exc).__name__ + ": " + str(exc).replace("\n", " ")[:200]
            print(name, value, flush=True)
            n += 1
    print(f"# {n} cases, bpcore from {bpcore.__file__}", file=sys.stderr)


if __name__ == "__main__":
    main()
