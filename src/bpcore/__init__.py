"""bpcore: fast backpropagation for dense neural networks on the CPU.

Core API: ``Network``, the optimizers ``SGD``, ``Adam``, ``AdamW``,
``NAdam``, ``RMSProp``, ``AdaGrad``, ``RPROP``, and ``train``. The compiled kernels live in ``bpcore._kernels``;
importing bpcore fails loudly if they were not built.
"""
from . import _kernels  # noqa: F401  (fail here, clearly, if the build is missing)
from ._engine import DivergenceError
from .estimators import MLPClassifier, MLPRegressor
from .network import Network
from .optimizers import RPROP, SGD, AdaGrad, Adam, AdamW, NAdam, Optimizer, RMSProp
from .training import train

__version__ = "0.1.0"

__all__ = [
    "AdaGrad",
    "Adam",
    "AdamW",
    "DivergenceError",
    "MLPClassifier",
    "MLPRegressor",
    "NAdam",
    "Network",
    "Optimizer",
    "RMSProp",
    "RPROP",
    "SGD",
    "train",
]
