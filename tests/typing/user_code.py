"""User code as a type checker sees it: `mypy --strict` must report nothing.

Checked by tests/test_typing.py and .ci/run. It calls what a user calls:
the four estimators (``fit`` returns the estimator's own type; predict,
score, the toolbox's options, ``fit(validation_data=..., callbacks=...)``,
``set_callbacks``), ``save`` / ``load`` / ``loads``, ``to_onnx`` and the
skl2onnx registration, callbacks, schedules, the core API, ``bpcore.dask``'s
functions and objective, ``bpcore.benchmark`` and ``show_config``. Never
executed: only type-checked.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import onnx
from typing_extensions import assert_type

import bpcore
import bpcore.benchmark
import bpcore.dask
import bpcore.onnx
import bpcore.persistence
from bpcore.callbacks import (Callback, CSVLogger, EarlyStopping, History, ModelCheckpoint,
                              ProgressBar)
from bpcore.schedules import (CosineAnnealingLR, OneCycleLR, ReduceLROnPlateau, Schedule,
                              SequentialLR, StepLR, named_schedule)


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


def predictions(clf: bpcore.MLPClassifier, nn: bpcore.NeuralNetClassifier,
                reg: bpcore.MLPRegressor, X: npt.NDArray[np.float32]) -> float:
    labels: npt.NDArray[np.generic] = clf.predict(X)
    log_proba: npt.NDArray[np.generic] = nn.predict_log_proba(X)
    values: npt.NDArray[np.generic] = reg.predict(X)
    return float(len(labels) + log_proba.size + values.size)


def toolbox(X: npt.NDArray[np.float64], y: npt.NDArray[np.int64]) -> bpcore.NeuralNetRegressor:
    clf = bpcore.NeuralNetClassifier(
        (32, 32), activation=["gelu", "silu"], solver="adamw", learning_rate=StepLR(10),
        init="he_uniform", dropout=[0.1, 0.0], batch_norm=True, residual=True, l1=1e-5,
        max_norm=3.0, clip_norm=1.0, class_weight="balanced", scoring="accuracy")
    # fit's extra arguments: validation data and bpcore callbacks; still the own type.
    assert_type(clf.fit(X, y, validation_data=(X, y), callbacks=[EarlyStopping(patience=2)]),
                bpcore.NeuralNetClassifier)
    clf.set_callbacks(CSVLogger("epochs.csv"))      # scikit-learn's protocol (1.9)
    reg = bpcore.NeuralNetRegressor(loss="huber", huber_delta=0.5, target_scaling="standard")
    assert_type(reg.partial_fit(X, X[:, 0]), bpcore.NeuralNetRegressor)
    offset: npt.NDArray[np.float64] | None = reg.target_offset_
    print(offset, clf.network_.summary())
    return reg


def saving(est: bpcore.NeuralNetClassifier, path: str) -> onnx.ModelProto:
    bpcore.save(est, path)
    loaded: object = bpcore.load(path)
    assert isinstance(loaded, bpcore.NeuralNetClassifier)
    again: object = bpcore.persistence.loads(open(path, "rb").read())
    assert isinstance(again, bpcore.NeuralNetClassifier)
    model: onnx.ModelProto = bpcore.to_onnx(loaded, np.zeros((1, 4), dtype=np.float32))
    names: list[str] = bpcore.onnx.register_skl2onnx()
    print(names)
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
        callbacks=[EarlyStopping(patience=3), CSVLogger("log.csv"), PrintLoss(),
                   ModelCheckpoint("best-{epoch:03d}.bpcore", monitor="val_loss"),
                   ProgressBar(leave=False)])
    records: dict[str, list[float]] = history.as_dict()
    warm: Schedule = SequentialLR([StepLR(5), ReduceLROnPlateau(patience=2)], milestones=[5])
    cosine: Schedule = named_schedule("cosine", max_iter=50, learning_rate_init=1e-3,
                                      n_iter_no_change=10, steps_per_epoch=8)
    print(records, warm, cosine, History().epochs)
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
    classes = bpcore.dask.compute_classes(Y)
    Y1 = bpcore.dask.binarize(Y, classes, dtype="float32")
    objective = bpcore.dask.BlockwiseObjective(net, X, Y1, l1=1e-5, broadcast="tasks")
    loss, grad = objective(net.params)
    moved: dict[str, int] = objective.bytes_per_evaluation()
    objective.close()
    return (bpcore.dask.predict(net, X), bpcore.dask.predict_proba(net, X), result,
            loss + float(grad.sum()), moved)


def benchmark() -> int:
    result: bpcore.benchmark.ComparisonResult = bpcore.benchmark.compare(
        hidden_layer_sizes=(16,), n_samples=200, contenders=("bpcore", "sklearn"),
        progress=False)
    row: dict[str, object] = result.row("bpcore")
    print(row, result.as_dict())
    return bpcore.benchmark.main(["--layers", "8", "16", "3", "--no-progress"])
