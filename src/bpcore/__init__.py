"""Fast backpropagation for dense neural networks on the CPU.

Core API: ``Network`` (layers with batch norm, dropout, residual skips, a
choice of activations, losses and initializations), the optimizers ``SGD``,
``Adam``, ``AdamW``, ``NAdam``, ``RMSProp``, ``AdaGrad``, ``RPROP`` and
``LBFGS``, ``train`` (with schedules
from ``bpcore.schedules`` and callbacks from ``bpcore.callbacks``) and
``check_gradients``. Drop-in scikit-learn estimators: ``MLPClassifier``,
``MLPRegressor``; with the whole toolbox as parameters:
``NeuralNetClassifier``, ``NeuralNetRegressor``. The compiled kernels live in ``bpcore._kernels``; importing
bpcore fails loudly if they were not built.
"""
from typing import TYPE_CHECKING, Any

from . import _kernels as _kernels  # noqa: F401  (fail here, clearly, if the build is missing)
from . import _threads  # noqa: F401  (its fork hook: forked children run single-threaded)
from . import callbacks, exceptions, schedules  # noqa: F401
from .exceptions import DivergenceError
from ._config import show_config
from .callbacks import History
from .estimators import MLPClassifier, MLPRegressor
from .gradcheck import check_gradients
from .network import Network
from .persistence import load, save
from .optimizers import LBFGS, RPROP, SGD, AdaGrad, Adam, AdamW, NAdam, Optimizer, RMSProp
from .plotting import LossCurveDisplay
from .toolbox import NeuralNetClassifier, NeuralNetRegressor
from .training import train
from ._version import __version__
from . import _skl2onnx_hook

_skl2onnx_hook.install()  # skl2onnx.to_onnx(est) works once skl2onnx is imported


if TYPE_CHECKING:  # typed for checkers; at run time __getattr__ imports it when asked for
    from .onnx import to_onnx


def __getattr__(name: str) -> Any:  # bpcore.to_onnx imports onnx only when asked for
    if name == "to_onnx":
        from .onnx import to_onnx
        return to_onnx
    raise AttributeError(f"module 'bpcore' has no attribute {name!r}")


__all__ = [
    "AdaGrad",
    "Adam",
    "AdamW",
    "DivergenceError",
    "History",
    "LBFGS",
    "LossCurveDisplay",
    "MLPClassifier",
    "MLPRegressor",
    "NAdam",
    "Network",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "Optimizer",
    "RMSProp",
    "RPROP",
    "SGD",
    "check_gradients",
    "load",
    "save",
    "show_config",
    "to_onnx",
    "train",
]
