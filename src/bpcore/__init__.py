"""bpcore: fast backpropagation for dense neural networks on the CPU.

Core API: ``Network``, the optimizers ``SGD``, ``Adam``, ``RMSProp``,
``AdaGrad``, and ``train``. The compiled kernels live in ``bpcore._kernels``;
importing bpcore fails loudly if they were not built.
"""
from . import _kernels  # noqa: F401  (fail here, clearly, if the build is missing)
from ._engine import DivergenceError
from .estimators import MLPClassifier, MLPRegressor
from .network import Network
from .optimizers import SGD, AdaGrad, Adam, Optimizer, RMSProp
from .training import train

__version__ = "0.1.0"

__all__ = [
    "AdaGrad",
    "Adam",
    "DivergenceError",
    "MLPClassifier",
    "MLPRegressor",
    "Network",
    "Optimizer",
    "RMSProp",
    "SGD",
    "train",
]
