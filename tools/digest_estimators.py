"""One SHA-256 per estimator fit, to check that a refactor changes no result bit.

Fits every estimator class (``MLPClassifier``, ``MLPRegressor``,
``NeuralNetClassifier``, ``NeuralNetRegressor``) across the solvers, the
schedules, early stopping, warm starts, ``partial_fit``, weights, the toolbox's
layers and options, both dtypes, sparse and multi-output data, and prints one
line per case: its name and the SHA-256 of everything the fit produced
(``coefs_``, ``intercepts_``, ``loss_curve_``, ``validation_scores_``,
``n_iter_``, ``t_``, ``best_loss_``, ``history_`` without its timings, and
the predictions and probabilities on held-out rows).

Run it on two checkouts and compare the outputs line by line::

    PYTHONPATH=/work/baseline/src python tools/digest_estimators.py > before.txt
    PYTHONPATH=src python tools/digest_estimators.py > after.txt
    diff before.txt after.txt && echo bitwise equal

``--dask`` adds the dask route (``solver='lbfgs'`` on dask arrays), which
starts a local two-worker cluster.
"""
import argparse
import hashlib
import sys
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_digits, make_multilabel_classification, make_regression

import bpcore
from bpcore import MLPClassifier, MLPRegressor, NeuralNetClassifier, NeuralNetRegressor
from bpcore import schedules


def _feed(h, value):
    """Hash ``value`` (arrays by dtype, shape and bytes; containers in order)."""
    if value is None:
        h.update(b"None;")
    elif isinstance(value, (list, tuple)):
        h.update(b"[%d;" % len(value))
        for v in value:
            _feed(h, v)
        h.update(b"];")
    elif isinstance(value, dict):
        for k in sorted(value):
            h.update(repr(k).encode() + b":")
            _feed(h, value[k])
    elif isinstance(value, (np.ndarray, np.generic, float, int, bool)):
        a = np.ascontiguousarray(value)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    else:
        h.update(repr(value).encode() + b";")


def digest(est, X_test):
    """SHA-256 of the fitted state and predictions of ``est``."""
    h = hashlib.sha256()
    for name in ("coefs_", "intercepts_", "loss_curve_", "validation_scores_",
                 "best_validation_score_", "n_iter_", "t_", "best_loss_", "loss_"):
        h.update(name.encode() + b"=")
        _feed(h, getattr(est, name, "<absent>"))
    history = getattr(est, "history_", None)
    if history is not None:
        records = history.as_dict()
        records.pop("epoch_time")       # wall time: not a result
        h.update(b"history_=")
        _feed(h, records)
    net = getattr(est, "_net", None)
    if net is not None:
        h.update(b"buffers=")
        _feed(h, net.buffers)
    opt = getattr(est, "_optimizer", None)
    if opt is not None:
        h.update(b"optimizer=")
        _feed(h, [opt.learning_rate, opt.t, opt.state])
    h.update(b"predict=")
    _feed(h, est.predict(X_test))
    if hasattr(est, "predict_proba"):
        h.update(b"proba=")
        _feed(h, est.predict_proba(X_test))
    return h.hexdigest()


def _data():
    X, y = load_digits(return_X_y=True)
    X = X[:400] / 16.0
    y = y[:400]
    Xr, yr = make_regression(n_samples=300, n_features=12, n_targets=1, noise=5.0,
                             random_state=0)
    yr = yr / 100.0
    Xm, ym = make_regression(n_samples=240, n_features=10, n_targets=3, noise=1.0,
                             random_state=1)
    ym = ym / 100.0
    Xl, yl = make_multilabel_classification(n_samples=200, n_features=15, n_classes=4,
                                            random_state=0)
    return {"clf": (X, y), "bin": (X, (y > 4).astype(int)), "reg": (Xr, yr),
            "multi": (Xm, ym), "multilabel": (Xl.astype(float), yl)}


def cases():
    """(name, class, estimator kwargs, data key, fit kind, fit kwargs) of every case."""
    base = dict(hidden_layer_sizes=(24, 12), max_iter=12, random_state=0)
    out = []

    def add(name, cls, data, fit="fit", est_kw=None, **fit_kw):
        out.append((name, cls, {**base, **(est_kw or {})}, data, fit, fit_kw))

    _dropin_cases(add)
    _toolbox_cases(add)
    return out


def _dropin_cases(add):
    """Every class on scikit-learn's options."""
    dropins = [(MLPClassifier, "clf"), (MLPRegressor, "reg"),
               (NeuralNetClassifier, "clf"), (NeuralNetRegressor, "reg")]
    solvers = [
        ("sgd-const-nesterov", dict(solver="sgd", learning_rate_init=0.05)),
        ("sgd-const-mom", dict(solver="sgd", nesterovs_momentum=False, learning_rate_init=0.05)),
        ("sgd-nomom", dict(solver="sgd", momentum=0.0, learning_rate_init=0.05)),
        ("sgd-invscaling", dict(solver="sgd", learning_rate="invscaling",
                                learning_rate_init=0.2, shuffle=False)),
        ("sgd-adaptive", dict(solver="sgd", learning_rate="adaptive", tol=0.5,
                              n_iter_no_change=1, learning_rate_init=0.05)),
        ("adam", dict(solver="adam", learning_rate_init=0.01)),
        ("adam-tolstop", dict(solver="adam", tol=0.05, n_iter_no_change=2)),
        ("lbfgs", dict(solver="lbfgs", max_iter=30)),
    ]
    for cls, data in dropins:
        for sname, kw in solvers:
            add(f"{cls.__name__}/{sname}", cls, data, est_kw=kw)
            add(f"{cls.__name__}/{sname}/f32", cls, data, est_kw=kw, dtype=np.float32)
        add(f"{cls.__name__}/early-sgd", cls, data,
            est_kw=dict(solver="sgd", early_stopping=True, n_iter_no_change=2, tol=0.01))
        add(f"{cls.__name__}/early-adam", cls, data,
            est_kw=dict(solver="adam", early_stopping=True, learning_rate_init=0.05))
        add(f"{cls.__name__}/early-adaptive", cls, data,
            est_kw=dict(solver="sgd", learning_rate="adaptive", tol=0.5,
                        n_iter_no_change=1, early_stopping=True))
        add(f"{cls.__name__}/warm", cls, data, fit="warm", est_kw=dict(warm_start=True))
        add(f"{cls.__name__}/warm-early", cls, data, fit="warm",
            est_kw=dict(warm_start=True, early_stopping=True))
        add(f"{cls.__name__}/partial-sgd", cls, data, fit="partial",
            est_kw=dict(solver="sgd", learning_rate="invscaling"))
        add(f"{cls.__name__}/partial-adam", cls, data, fit="partial")
        add(f"{cls.__name__}/sw", cls, data, sample_weight=True)
        add(f"{cls.__name__}/sw-lbfgs", cls, data, est_kw=dict(solver="lbfgs"),
            sample_weight=True)
        add(f"{cls.__name__}/sparse", cls, data, sparse=True)
        add(f"{cls.__name__}/sparse-lbfgs", cls, data, est_kw=dict(solver="lbfgs"),
            sparse=True)
        add(f"{cls.__name__}/batch7", cls, data, est_kw=dict(batch_size=7, max_iter=3))
        add(f"{cls.__name__}/early-sw", cls, data, est_kw=dict(early_stopping=True),
            sample_weight=True)
    add("MLPClassifier/binary-early", MLPClassifier, "bin", est_kw=dict(early_stopping=True))
    add("MLPClassifier/multilabel", MLPClassifier, "multilabel")
    add("MLPClassifier/multilabel-lbfgs", MLPClassifier, "multilabel",
        est_kw=dict(solver="lbfgs"))
    add("MLPRegressor/multioutput", MLPRegressor, "multi")
    add("MLPRegressor/multioutput-lbfgs", MLPRegressor, "multi", est_kw=dict(solver="lbfgs"))
    add("MLPRegressor/poisson", MLPRegressor, "reg", est_kw=dict(loss="poisson"),
        target="abs")
    add("NeuralNetClassifier/multilabel", NeuralNetClassifier, "multilabel")
    add("NeuralNetRegressor/multioutput", NeuralNetRegressor, "multi")


def _toolbox_cases(add):
    """The toolbox estimators on their own options."""
    toolbox = [
        ("adamw", dict(solver="adamw", learning_rate_init=0.01, weight_decay=0.1)),
        ("nadam", dict(solver="nadam", learning_rate_init=0.01)),
        ("rmsprop", dict(solver="rmsprop", learning_rate_init=0.005)),
        ("adagrad", dict(solver="adagrad", learning_rate_init=0.05)),
        ("rprop", dict(solver="rprop", learning_rate_init=0.01)),
        ("sgd-step", dict(solver="sgd", learning_rate="step", learning_rate_init=0.05)),
        ("adam-exponential", dict(learning_rate="exponential", learning_rate_init=0.01)),
        ("adam-cosine", dict(learning_rate="cosine", learning_rate_init=0.01)),
        ("adam-restarts", dict(learning_rate="cosine_restarts", learning_rate_init=0.01)),
        ("adam-onecycle", dict(learning_rate="onecycle", learning_rate_init=0.01)),
        ("adam-plateau", dict(learning_rate="plateau", learning_rate_init=0.01)),
        ("sgd-sched-object", dict(solver="sgd", learning_rate_init=0.05,
                                  learning_rate=schedules.StepLR(3, gamma=0.5))),
        ("adamw-sequential", dict(solver="adamw", learning_rate=schedules.SequentialLR(
            [schedules.LinearLR(0.1, 1.0, 3), schedules.CosineAnnealingLR(9)], [3]))),
        ("bn", dict(batch_norm=True, learning_rate_init=0.01)),
        ("dropout", dict(dropout=0.2, learning_rate_init=0.01)),
        ("dropout-list", dict(dropout=[0.1, 0.3], learning_rate_init=0.01)),
        ("residual", dict(hidden_layer_sizes=(16, 16, 16), residual=True)),
        ("bn-dropout-res", dict(hidden_layer_sizes=(16, 16), batch_norm=[True, False],
                                dropout=0.1, residual=True)),
        ("init-he", dict(init="he_normal", activation="gelu")),
        ("acts", dict(activation=["silu", "selu"])),
        ("l1-maxnorm-clip", dict(l1=1e-3, max_norm=1.0, clip_norm=1.0, clip_value=0.5)),
        ("lbfgs-l1", dict(solver="lbfgs", l1=1e-3, max_iter=30)),
        ("early-loss", dict(early_stopping=True, scoring="loss", n_iter_no_change=3)),
        ("early-restore-false", dict(early_stopping=True, restore_best_weights=False,
                                     batch_norm=True, n_iter_no_change=2, tol=0.01)),
        ("bn-batch-odd", dict(batch_norm=True, batch_size=199)),
        ("partial-onecycle", dict(learning_rate="onecycle", max_iter=3)),
    ]
    for cls, data in [(NeuralNetClassifier, "clf"), (NeuralNetRegressor, "reg")]:
        for tname, kw in toolbox:
            fit = "partial" if tname.startswith("partial") else "fit"
            add(f"{cls.__name__}/{tname}", cls, data, fit=fit, est_kw=kw)
        add(f"{cls.__name__}/adamw/f32", cls, data, est_kw=toolbox[0][1], dtype=np.float32)
        add(f"{cls.__name__}/bn/f32", cls, data, est_kw=dict(batch_norm=True), dtype=np.float32)
        add(f"{cls.__name__}/valdata", cls, data, validation=True)
        add(f"{cls.__name__}/valdata-early", cls, data, est_kw=dict(early_stopping=True),
            validation=True)
        add(f"{cls.__name__}/valdata-lbfgs", cls, data, est_kw=dict(solver="lbfgs"),
            validation=True)
        add(f"{cls.__name__}/valdata-sw", cls, data, est_kw=dict(early_stopping=True),
            validation=True, sample_weight=True)
        add(f"{cls.__name__}/warm-bn", cls, data, fit="warm", est_kw=dict(
            warm_start=True, batch_norm=True, learning_rate="cosine"))
        add(f"{cls.__name__}/partial-plateau", cls, data, fit="partial",
            est_kw=dict(learning_rate="plateau"))
    add("NeuralNetClassifier/scoring-f1", NeuralNetClassifier, "clf",
        est_kw=dict(early_stopping=True, scoring="f1_macro", n_iter_no_change=3))
    add("NeuralNetClassifier/scoring-val", NeuralNetClassifier, "clf",
        est_kw=dict(scoring="balanced_accuracy"), validation=True)
    add("NeuralNetClassifier/class_weight", NeuralNetClassifier, "clf",
        est_kw=dict(class_weight="balanced"))
    add("NeuralNetClassifier/class_weight-dict-sw", NeuralNetClassifier, "bin",
        est_kw=dict(class_weight={0: 1.0, 1: 3.0}), sample_weight=True)
    add("NeuralNetClassifier/class_weight-partial", NeuralNetClassifier, "bin",
        fit="partial", est_kw=dict(class_weight={0: 1.0, 1: 3.0}))
    add("NeuralNetClassifier/class_weight-lbfgs", NeuralNetClassifier, "clf",
        est_kw=dict(class_weight="balanced", solver="lbfgs"))
    add("NeuralNetClassifier/bin-early", NeuralNetClassifier, "bin",
        est_kw=dict(early_stopping=True))
    add("NeuralNetRegressor/huber", NeuralNetRegressor, "reg",
        est_kw=dict(loss="huber", huber_delta=0.5))
    add("NeuralNetRegressor/absolute", NeuralNetRegressor, "reg",
        est_kw=dict(loss="absolute_error", solver="sgd", learning_rate_init=0.01))
    add("NeuralNetRegressor/poisson", NeuralNetRegressor, "reg",
        est_kw=dict(loss="poisson"), target="abs")


def run_case(cls, est_kw, X, y, fit, dtype=None, sample_weight=False, sparse=False,
             validation=False, target=None):
    if dtype is not None:
        X = X.astype(dtype)
    if target == "abs":
        y = np.abs(y)
    n = X.shape[0]
    cut = int(n * 0.75)
    Xt, yt, Xv, yv = X[:cut], y[:cut], X[cut:], y[cut:]
    if sparse:
        Xt = sp.csr_matrix(np.where(np.abs(Xt) < 0.3, 0.0, Xt))
    sw = (np.random.RandomState(3).uniform(0.5, 2.0, Xt.shape[0]) if sample_weight
          else None)
    est = cls(**est_kw)
    kw = {} if sw is None else {"sample_weight": sw}
    if validation:
        kw["validation_data"] = (Xv, yv)
    if fit == "fit":
        est.fit(Xt, yt, **kw)
    elif fit == "warm":
        est.fit(Xt, yt, **kw)
        est.set_params(max_iter=5)
        est.fit(Xt, yt, **kw)
    else:
        extra = {"classes": np.unique(y, axis=0)} if (
            hasattr(est, "predict_proba") and np.ndim(y) == 1) else {}
        for i in range(4):
            rows = slice(i * cut // 4, (i + 1) * cut // 4)
            part_kw = {} if sw is None else {"sample_weight": sw[rows]}
            est.partial_fit(Xt[rows], yt[rows], **part_kw, **extra)
    return digest(est, Xv)


def run_dask(data):
    import dask.array as da
    import distributed
    lines = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        for cls, key in [(NeuralNetClassifier, "clf"), (NeuralNetRegressor, "reg")]:
            X, y = data[key]
            est = cls(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=20,
                      random_state=0, l1=1e-4)
            est.fit(da.from_array(X, chunks=100), da.from_array(y, chunks=100))
            lines.append(f"{cls.__name__}/dask-lbfgs {digest(est, X[-50:])}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dask", action="store_true", help="also the dask route")
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    args = parser.parse_args(argv)
    data = _data()
    warnings.simplefilter("ignore")
    for name, cls, est_kw, key, fit, fit_kw in cases():
        if args.k not in name:
            continue
        X, y = data[key]
        try:
            line = run_case(cls, est_kw, X, y, fit, **fit_kw)
        except Exception as exc:  # an error is a result too: it must not change
            line = f"error {type(exc).__name__}: {exc}"
        print(f"{name} {line}", flush=True)
    if args.dask:
        for line in run_dask(data):
            print(line, flush=True)
    print(f"# bpcore {bpcore.__version__} from {bpcore.__file__}", file=sys.stderr)


if __name__ == "__main__":
    main()
