"""User code as a type checker sees it: `mypy --strict` must report nothing.

Checked by tests/test_typing.py and .ci/run. It calls what a user calls:
the four estimators (``fit`` returns the estimator's own type), ``save`` /
``load``, ``to_onnx``, callbacks, schedules, the core API, ``bpcore.dask``'s
functions and ``show_config``. Never executed: only type-checked.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import onnx
from typing_extensions import assert_type

import bpcore
import bpcore.dask
from bpcore.callbacks import Callback, CSVLogger, EarlyStopping
from bpcore.schedules import CosineAnnealingLR, OneCycleLR, Schedule


def estimators(X: npt.NDArray[np.float64], y: npt.NDArray[np.int64]) -> float:
    clf: bpcore.MLPClassifier = bpcore.MLPClassifier(hidden_layer_sizes=(32,)).fit(X, y)
    reg: bpcore.MLPRegressor = bpcore.MLPRegressor().fit(X, X[:, 0])
    nn: bpcore.NeuralNetClassifier = bpcore.NeuralNetClassifier(dropout=0.1).fit(X, y)
    nr: bpcore.NeuralNetRegressor = bpcore.NeuralNetRegressor(loss="huber").fit(X, X[:, 0])
    # fit returns the estimator's own type, not Any.
    assert_type(bpcore.MLPClassifier().fit(X, y), bpcore.MLPClassifier)
    assert_type(bpcore.NeuralNetRegressor().fit(X, X[:, 0]), bpcore.NeuralNetRegressor)
    assert_type(clf.partial_fit(X, y), bpcore.MLPClassifier)
    proba: npt.NDArray[np.float64] = clf.predict_proba(X)
    history: bpcore.History = nn.history_
    net: bpcore.Network = nn.network_
    score: float = clf.score(X, y) + reg.score(X, X[:, 0]) + nr.score(X, X[:, 0])
    return score + float(proba.sum()) + len(history.loss) + net.n_params


def saving(est: bpcore.NeuralNetClassifier, path: str) -> onnx.ModelProto:
    bpcore.save(est, path)
    loaded: object = bpcore.load(path)
    assert isinstance(loaded, bpcore.NeuralNetClassifier)
    model: onnx.ModelProto = bpcore.to_onnx(loaded, np.zeros((1, 4), dtype=np.float32))
    return model


class PrintLoss(Callback):
    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> bool:
        print(epoch, logs["loss"])
        return False


def core(X: npt.NDArray[np.float64], y: npt.NDArray[np.int64]) -> str:
    net = bpcore.Network([X.shape[1], 16, 3], output="softmax", loss="log_loss",
                         random_state=0)
    schedule: Schedule = CosineAnnealingLR(T_max=10)
    history: bpcore.History = bpcore.train(
        net, X, y, optimizer=bpcore.AdamW(learning_rate=1e-3), epochs=10, schedule=schedule,
        validation_data=(X, y),
        callbacks=[EarlyStopping(patience=3), CSVLogger("log.csv"), PrintLoss()])
    bpcore.train(net, X, y, optimizer=bpcore.SGD(0.1, momentum=0.9),
                 schedule=OneCycleLR(max_lr=0.1, total_steps=100))
    loss, grad = net.loss_and_grad(X, y)
    out = net.forward(X)
    err: float = bpcore.check_gradients(net, X[:5], y[:5])
    return net.summary() + str(loss + err + float(grad.sum()) + float(out.sum())
                               + history.loss[-1])


def config() -> bool:
    info = bpcore.show_config(mode="dicts")
    bpcore.show_config()
    return bool(info["openmp"])


def scale_out(net: bpcore.Network, X: object, Y: object) -> object:
    result = bpcore.dask.minimize_lbfgs(net, X, Y, alpha=1e-4)
    return bpcore.dask.predict(net, X), result
