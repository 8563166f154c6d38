"""ONNX export of networks and estimators, and their skl2onnx registration.

``to_onnx(obj, X_sample=None)`` builds an ``onnx.ModelProto`` computing what
``Network.forward``, ``predict`` and ``predict_proba`` compute:

- each layer is ``MatMul`` + ``Add``; batch norm (inference: running
  statistics) is folded into the preceding weights and bias,
  ``W' = W * s``, ``b' = shift - mean * s`` with
  ``s = gamma / sqrt(running_var + 1e-5)`` (computed in float64, then cast);
  dropout is dropped (inference); a residual skip is an ``Add``;
- activations by their ONNX operators: ``Relu``, ``Sigmoid``, ``Tanh``,
  ``Elu``, ``LeakyRelu``, ``Selu`` and ``Softplus`` in float32 graphs
  (float64 graphs build them from ``Max``, ``Mul``, ``Where``, ``Exp``,
  ``Log``: ONNX attributes are float32, and onnxruntime has no float64
  ``Elu``, ``Selu``, ``Softplus`` or ``Erf`` kernels), ``Softplus`` under
  ``Where(x > 20, x, .)`` (torch's threshold, which ONNX's ``Softplus``
  lacks), GELU as ``0.5 * x * (1 + Erf(x / sqrt(2)))`` (in float64 graphs
  the ``Erf`` runs in float32, so GELU agrees to about 1e-7), SiLU as
  ``x * Sigmoid(x)``, ``Softmax`` and Poisson's ``Exp``;
- a regressor's target scaling (``target_scaling``) as ``Mul`` + ``Add``
  after the network's output;
- regressors and networks output ``(n, k)``; classifiers output the labels,
  then the probabilities as a plain ``(n, n_classes)`` tensor (no ZipMap):
  ``(n, 2)`` for binary targets as ``predict_proba``, and an ``(n, n_labels)``
  int64 indicator for multilabel targets.

The graph computes in the input's dtype (``X_sample``'s: float32 or
float64; float32 when no sample is given), with the weights cast to it.

bpcore's estimators are registered with skl2onnx as soon as both are
imported, in either order (``import bpcore`` arranges it without importing
skl2onnx; importing this module registers too), so that
``skl2onnx.to_onnx(est, X[:1])`` works as for scikit-learn's MLPs, ZipMap
and its options included, for the estimators and pipelines holding them.

Needs the ``onnx`` extra: ``pip install "bpcore[onnx]"``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as exc:
    raise ImportError(
        "bpcore.onnx needs the 'onnx' package: pip install \"bpcore[onnx]\" "
        "(onnx, onnxruntime, skl2onnx)") from exc

from .network import BN_EPS, Network
from .activations import ELU_ALPHA, LEAKY_RELU_SLOPE

__all__ = ["to_onnx", "register_skl2onnx", "TARGET_OPSET"]

#: The opset of the graphs ``to_onnx`` writes (every operator used exists there).
TARGET_OPSET = 17
_IR_VERSION = 8                 # the IR version of opset 17 (onnx's table)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SOFTPLUS_THRESHOLD = 20.0
_ONNX_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}


# -- graph writers: one for a standalone model, one inside skl2onnx ---------------

class _Graph:
    """Collects nodes and initializers of a standalone model."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._n = 0

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def const(self, arr: ArrayLike, base: str = "c") -> str:
        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def op(self, op_type: str, inputs: Iterable[str], output: str | None = None,
           **attrs: Any) -> str:
        output = output or self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [output],
                                           name=self.name(f"node_{op_type}"), **attrs))
        return output


class _SklGraph:
    """Writes the same nodes into a skl2onnx scope and container."""

    # scope and container: skl2onnx's (it ships no types).
    def __init__(self, scope: Any, container: Any) -> None:
        self.scope, self.container = scope, container

    def name(self, base: str) -> str:
        name: str = self.scope.get_unique_variable_name(base)
        return name

    def const(self, arr: ArrayLike, base: str = "c") -> str:
        arr = np.asarray(arr)
        name = self.name(base)
        if arr.dtype.kind in "US":
            self.container.add_initializer(name, TensorProto.STRING, list(arr.shape),
                                           [s.encode("utf-8") for s in arr.ravel().tolist()])
        else:
            self.container.add_initializer(name, None, list(arr.shape),
                                           numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, inputs: Iterable[str], output: str | None = None,
           **attrs: Any) -> str:
        output = output or self.name(op_type.lower())
        self.container.add_node(op_type, list(inputs), [output],
                                name=self.scope.get_unique_operator_name(op_type),
                                op_version=TARGET_OPSET, **attrs)
        return output


#: Where the graph's nodes go: a standalone model, or skl2onnx's container.
_Writer = Union[_Graph, _SklGraph]


# -- the network's layers -----------------------------------------------------------

def _activation(g: _Writer, name: str, x: str, dtype: np.dtype[Any]) -> str:
    """Nodes computing activation ``name`` of ``x``; returns the output's name."""
    def c(value: float) -> str:
        return g.const(np.array(value, dtype=dtype))
    f32 = dtype == np.float32
    if name == "identity":
        return x
    if name == "relu":
        return g.op("Relu", [x])
    if name == "logistic":
        return g.op("Sigmoid", [x])
    if name == "tanh":
        return g.op("Tanh", [x])
    if name == "elu":
        if f32:
            return g.op("Elu", [x], alpha=ELU_ALPHA)
        # onnxruntime has no float64 Elu kernel.
        return g.op("Where", [g.op("Greater", [x, c(0.0)]), x,
                              g.op("Mul", [g.op("Sub", [g.op("Exp", [x]), c(1.0)]),
                                           c(ELU_ALPHA)])])
    if name == "leaky_relu":
        if f32:
            return g.op("LeakyRelu", [x], alpha=LEAKY_RELU_SLOPE)
        return g.op("Max", [x, g.op("Mul", [x, c(LEAKY_RELU_SLOPE)])])  # slope < 1
    if name == "selu":
        if f32:
            return g.op("Selu", [x], alpha=_SELU_ALPHA, gamma=_SELU_SCALE)
        neg = g.op("Mul", [g.op("Sub", [g.op("Exp", [x]), c(1.0)]),
                           c(_SELU_ALPHA * _SELU_SCALE)])
        return g.op("Where", [g.op("Greater", [x, c(0.0)]),
                              g.op("Mul", [x, c(_SELU_SCALE)]), neg])
    if name == "softplus":
        if f32:
            soft = g.op("Softplus", [x])
        else:
            # onnxruntime has no float64 Softplus: max(x, 0) + log(1 + exp(-|x|)).
            soft = g.op("Add", [g.op("Max", [x, c(0.0)]), g.op("Log", [g.op("Add", [
                c(1.0), g.op("Exp", [g.op("Neg", [g.op("Abs", [x])])])])])])
        return g.op("Where", [g.op("Greater", [x, c(_SOFTPLUS_THRESHOLD)]), x, soft])
    if name == "gelu":
        t = g.op("Mul", [x, c(1.0 / math.sqrt(2.0))])
        if f32:
            erf = g.op("Erf", [t])
        else:
            # onnxruntime has no float64 Erf kernel: erf runs in float32, so a
            # float64 GELU graph agrees with bpcore to about 1e-7, not 1e-15.
            erf = g.op("Cast", [g.op("Erf", [g.op("Cast", [t], to=TensorProto.FLOAT)])],
                       to=TensorProto.DOUBLE)
        return g.op("Mul", [g.op("Mul", [x, c(0.5)]), g.op("Add", [erf, c(1.0)])])
    if name == "silu":
        return g.op("Mul", [x, g.op("Sigmoid", [x])])
    if name == "softmax":
        return g.op("Softmax", [x], axis=-1)
    if name == "exp":
        return g.op("Exp", [x])
    raise ValueError(f"bpcore.to_onnx has no ONNX form of the activation {name!r}")


def _network(g: _Writer, net: Network, x: str, dtype: np.dtype[Any]) -> str:
    """Nodes computing ``net.forward`` of ``x``; returns the output's name."""
    n_layers = len(net.layer_sizes) - 1
    a = x
    for i in range(n_layers):
        W = np.asarray(net.coefs[i], dtype=np.float64)
        b = np.asarray(net.intercepts[i], dtype=np.float64)
        if net.bn_scales[i] is not None:
            s = (np.asarray(net.bn_scales[i], dtype=np.float64)
                 / np.sqrt(np.asarray(net.bn_vars[i], dtype=np.float64) + BN_EPS))
            W = W * s
            b = b - np.asarray(net.bn_means[i], dtype=np.float64) * s
        z = g.op("Add", [g.op("MatMul", [a, g.const(W.astype(dtype), f"W{i}")]),
                         g.const(b.astype(dtype), f"b{i}")])
        if i == n_layers - 1:
            return _activation(g, net.output, z, dtype)
        h = _activation(g, net._hidden[i], z, dtype)
        a = g.op("Add", [h, a]) if net._residual[i] else h
    raise AssertionError("unreachable: every network has an output layer")


# est: a fitted bpcore estimator (their attributes are scikit-learn's, untyped).
def _regressor(g: _Writer, est: Any, x: str, dtype: np.dtype[Any]) -> str:
    """Nodes computing a regressor's ``predict`` (2-D): the network, then the
    target scaling's ``out * target_scale_ + target_offset_`` when it has one
    (``NeuralNetRegressor(target_scaling=...)``), in the graph's dtype as
    ``predict`` maps it."""
    out = _network(g, est._sync_params(), x, dtype)
    scale = getattr(est, "target_scale_", None)
    if scale is None:
        return out
    out = g.op("Mul", [out, g.const(scale.astype(dtype), "target_scale")])
    return g.op("Add", [out, g.const(est.target_offset_.astype(dtype), "target_offset")])


def _classifier(g: _Writer, est: Any, x: str, dtype: np.dtype[Any], label_name: str,
                proba_name: str) -> None:
    """Labels and probabilities of a bpcore classifier, as predict/predict_proba."""
    net = est._sync_params()
    out = _network(g, net, x, dtype)
    y_type = est._label_binarizer.y_type_
    classes = np.asarray(est.classes_)
    if y_type == "multilabel-indicator":
        g.op("Identity", [out], proba_name)
        g.op("Cast", [g.op("Greater", [out, g.const(np.array(0.5, dtype))])], label_name,
             to=TensorProto.INT64)
        return
    if y_type == "multiclass":
        g.op("Identity", [out], proba_name)
        index = g.op("ArgMax", [out], axis=1, keepdims=0)
    elif y_type == "binary" and net.n_outputs == 1:
        # predict_proba's (1 - p, p); predict's LabelBinarizer threshold p > 0.5.
        g.op("Concat", [g.op("Sub", [g.const(np.array(1.0, dtype)), out]), out], proba_name,
             axis=1)
        positive = g.op("Cast", [g.op("Greater", [out, g.const(np.array(0.5, dtype))])],
                        to=TensorProto.INT64)
        index = g.op("Reshape", [positive, g.const(np.array([-1], np.int64))])
    else:
        raise ValueError(f"bpcore.to_onnx cannot export a classifier of target type {y_type!r}")
    g.op("Gather", [_label_constant(g, classes), index], label_name, axis=0)


def _label_constant(g: _Writer, classes: NDArray[Any]) -> str:
    if classes.dtype.kind in "UO":
        if not all(isinstance(c, str) for c in classes.tolist()):
            raise ValueError("bpcore.to_onnx exports str, int, float or bool class labels; "
                             f"classes_ holds {sorted({type(c).__name__ for c in classes})}")
        return g.const(classes.astype(str), "classes")
    if classes.dtype.kind in "iu":
        return g.const(classes.astype(np.int64), "classes")
    if classes.dtype.kind in "fb":
        return g.const(classes, "classes")
    raise ValueError(f"bpcore.to_onnx cannot export class labels of dtype {classes.dtype}")


def _label_type(est: Any) -> tuple[TensorProto.DataType, list[int | None]]:
    """(ONNX element type, shape) of a classifier's label output."""
    if est._label_binarizer.y_type_ == "multilabel-indicator":
        return TensorProto.INT64, [None, len(est.classes_)]
    kind = np.asarray(est.classes_).dtype.kind
    elem = {"U": TensorProto.STRING, "O": TensorProto.STRING, "i": TensorProto.INT64,
            "u": TensorProto.INT64, "b": TensorProto.BOOL}.get(kind)
    if elem is None:
        elem = helper.np_dtype_to_tensor_dtype(np.asarray(est.classes_).dtype)
    return elem, [None]


# -- the public function -----------------------------------------------------------

def _input_dtype(X_sample: ArrayLike | None, n_features: int) -> np.dtype[Any]:
    if X_sample is None:
        return np.dtype(np.float32)
    dtype = np.dtype(getattr(X_sample, "dtype", None) or np.asarray(X_sample).dtype)
    if dtype not in _ONNX_TYPES:
        raise ValueError(f"X_sample must be float32 or float64 (the ONNX input type follows "
                         f"it), got {dtype}; pass X_sample.astype(np.float32) or None")
    shape = getattr(X_sample, "shape", None) or np.shape(X_sample)
    if len(shape) != 2 or shape[1] != n_features:
        raise ValueError(f"X_sample must have shape (n_samples, {n_features}), got "
                         f"{tuple(shape)}")
    return dtype


def _estimator_kind(obj: object) -> Literal["network", "classifier", "regressor"]:
    from sklearn.base import is_classifier
    from sklearn.utils.validation import check_is_fitted
    from .estimators import _BaseMLP
    if isinstance(obj, Network):
        return "network"
    if isinstance(obj, _BaseMLP):
        check_is_fitted(obj)
        return "classifier" if is_classifier(obj) else "regressor"
    raise TypeError(f"bpcore.to_onnx takes a bpcore Network or estimator, got "
                    f"{type(obj).__module__}.{type(obj).__qualname__}")


def to_onnx(obj: object, X_sample: ArrayLike | None = None) -> onnx.ModelProto:
    """Export a network or a fitted estimator to ONNX.

    Parameters
    ----------
    obj : Network, MLPClassifier, MLPRegressor or a toolbox estimator
        Estimators must be fitted.
    X_sample : array-like of shape (n_samples, n_features), default=None
        Sets the input type: float32 or float64 (float32 when None). The
        whole graph computes in that type.

    Returns
    -------
    model : onnx.ModelProto
        Opset 17, input ``"X"`` of shape ``(n, n_features)``. Outputs:
        ``"output"`` ``(n, k)`` for a Network (``forward``); ``"variable"``
        ``(n, n_outputs)`` for a regressor; ``"label"`` then
        ``"probabilities"`` ``(n, n_classes)`` for a classifier (no ZipMap).

    Examples
    --------
    >>> import numpy as np, bpcore
    >>> import onnxruntime as ort
    >>> net = bpcore.Network([4, 8, 8, 3], activation="silu", batch_norm=True,
    ...                      residual=True, output="softmax", loss="log_loss",
    ...                      random_state=0)
    >>> X = np.random.default_rng(0).standard_normal((5, 4))
    >>> model = bpcore.to_onnx(net, X)
    >>> sess = ort.InferenceSession(model.SerializeToString(),
    ...                             providers=["CPUExecutionProvider"])
    >>> out, = sess.run(None, {"X": X})
    >>> bool(np.abs(out - net.forward(X)).max() < 1e-12)
    True
    """
    kind = _estimator_kind(obj)
    model_obj: Any = obj  # a Network or a fitted estimator, as kind says
    n_features = model_obj.n_features if kind == "network" else model_obj._net.n_features
    dtype = _input_dtype(X_sample, n_features)
    elem = _ONNX_TYPES[dtype]
    g = _Graph()
    if kind == "network":
        out = _network(g, model_obj, "X", dtype)
        g.op("Identity", [out], "output")
        outputs = [helper.make_tensor_value_info("output", elem, [None, model_obj.n_outputs])]
    elif kind == "regressor":
        g.op("Identity", [_regressor(g, model_obj, "X", dtype)], "variable")
        outputs = [helper.make_tensor_value_info("variable", elem,
                                                 [None, model_obj._net.n_outputs])]
    else:
        _classifier(g, model_obj, "X", dtype, "label", "probabilities")
        label_elem, label_shape = _label_type(model_obj)
        n_proba = (2 if model_obj._label_binarizer.y_type_ == "binary"
                   else model_obj._net.n_outputs)
        outputs = [helper.make_tensor_value_info("label", label_elem, label_shape),
                   helper.make_tensor_value_info("probabilities", elem, [None, n_proba])]
    graph = helper.make_graph(
        g.nodes, f"bpcore_{type(obj).__name__}",
        [helper.make_tensor_value_info("X", elem, [None, n_features])], outputs,
        initializer=g.initializers)
    from ._version import __version__
    model = helper.make_model(graph, producer_name="bpcore", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", TARGET_OPSET)],
                              ir_version=_IR_VERSION)
    onnx.checker.check_model(model)
    return model


# -- skl2onnx registration -----------------------------------------------------------

# operator, scope, container: skl2onnx's (it ships no types).
def _skl2onnx_shape_calculator(operator: Any) -> None:
    from skl2onnx.common.data_types import (
        BooleanTensorType, DoubleTensorType, FloatTensorType, Int64TensorType,
        StringTensorType)
    est = operator.raw_operator
    input_type = type(operator.inputs[0].type)
    if input_type not in (FloatTensorType, DoubleTensorType):
        input_type = FloatTensorType
    n = operator.inputs[0].get_first_dimension()
    if _estimator_kind(est) == "regressor":
        operator.outputs[0].type = input_type([n, est._net.n_outputs])
        return
    elem, shape = _label_type(est)
    types = {TensorProto.STRING: StringTensorType, TensorProto.INT64: Int64TensorType,
             TensorProto.BOOL: BooleanTensorType, TensorProto.FLOAT: FloatTensorType,
             TensorProto.DOUBLE: DoubleTensorType}
    operator.outputs[0].type = types[elem]([n] + shape[1:])
    n_proba = 2 if est._label_binarizer.y_type_ == "binary" else est._net.n_outputs
    operator.outputs[1].type = input_type([n, n_proba])


def _skl2onnx_converter(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType
    est = operator.raw_operator
    dtype = np.dtype(np.float64 if isinstance(operator.inputs[0].type, DoubleTensorType)
                     else np.float32)
    g = _SklGraph(scope, container)
    x = operator.inputs[0].full_name
    if dtype == np.float32 and not _is_float(operator.inputs[0].type):
        x = g.op("Cast", [x], to=TensorProto.FLOAT)
    if _estimator_kind(est) == "regressor":
        g.op("Identity", [_regressor(g, est, x, dtype)], operator.outputs[0].full_name)
    else:
        _classifier(g, est, x, dtype, operator.outputs[0].full_name,
                    operator.outputs[1].full_name)


def _is_float(t: object) -> bool:
    from skl2onnx.common.data_types import FloatTensorType
    return isinstance(t, FloatTensorType)


def register_skl2onnx() -> list[str]:
    """Register bpcore's estimators with skl2onnx (done when skl2onnx is imported).

    After it, ``skl2onnx.to_onnx(est, X[:1])`` converts a fitted bpcore
    estimator as it converts scikit-learn's, with the same output names and
    options: classifiers take ``options={"zipmap": False}`` for a plain
    probability tensor (ZipMap is skl2onnx's default, as for scikit-learn).

    Returns
    -------
    registered : list of str
        The names of the registered classes.

    Examples
    --------
    >>> import bpcore.onnx
    >>> "MLPClassifier" in bpcore.onnx.register_skl2onnx()
    True
    """
    from skl2onnx import update_registered_converter
    from sklearn.base import is_classifier
    from .persistence import _estimator_classes
    names = []
    for name, cls in _estimator_classes().items():
        classifier = is_classifier(cls())
        update_registered_converter(
            cls, f"Bpcore{name}", _skl2onnx_shape_calculator, _skl2onnx_converter,
            options={"zipmap": [True, False, "columns"], "nocl": [True, False]}
            if classifier else None)
        names.append(name)
    return names


try:
    import skl2onnx  # noqa: F401
except ImportError:  # the onnx extra installs it; to_onnx alone needs only onnx
    pass
else:
    register_skl2onnx()
