"""Activation and loss registries: the one place where names become kernel codes.

Every name a user can pass maps here to a code of ``bpcore._kernels``; the
kernels never see a string. Error messages list the registry's keys, and the
tests parametrize over these dicts, so a new entry enrols itself.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from . import _kernels as K

#: Hidden-layer activations: name -> kernel code. Derivatives are taken from
#: the activation's output, as scikit-learn does.
HIDDEN_ACTIVATIONS: dict[str, int] = {
    "identity": K.Activation.IDENTITY,
    "logistic": K.Activation.LOGISTIC,
    "tanh": K.Activation.TANH,
    "relu": K.Activation.RELU,
    "leaky_relu": K.Activation.LEAKY_RELU,  # slope 0.01 for z < 0
    "elu": K.Activation.ELU,                # alpha 1.0: alpha * (exp(z) - 1) for z < 0
    # torch's definitions; their derivatives need z, which the forward pass
    # then keeps (hidden layers only):
    "gelu": K.Activation.GELU,              # z * Phi(z), the exact erf form
    "silu": K.Activation.SILU,              # z * sigmoid(z)
    "softplus": K.Activation.SOFTPLUS,      # log(1 + exp(z)); z for z > 20
    "selu": K.Activation.SELU,              # scale * (z if z > 0 else alpha * (exp(z) - 1))
}

#: Activations that only hidden layers take.
HIDDEN_ONLY = ("gelu", "silu", "softplus", "selu")

#: Output activations: the hidden ones that read their derivative from the
#: output, plus softmax (rows sum to 1) and exp.
OUTPUT_ACTIVATIONS: dict[str, int] = {
    **{k: v for k, v in HIDDEN_ACTIVATIONS.items() if k not in HIDDEN_ONLY},
    "softmax": K.Activation.SOFTMAX, "exp": K.Activation.EXP,
}

#: Losses: name -> {output activation: kernel loss code}. ``None`` means any
#: output activation (the chain rule through it is applied in the kernel).
#: log_loss and poisson are defined only with their canonical output, whose
#: delta simplifies to ``output - y``.
LOSSES: dict[str, dict[str, int] | None] = {
    "squared_error": None,
    "absolute_error": None,   # mean |out - y|, as torch.nn.L1Loss
    "huber": None,            # torch.nn.HuberLoss(delta), delta = Network(huber_delta=)
    "log_loss": {"softmax": K.Loss.LOG_LOSS, "logistic": K.Loss.BINARY_LOG_LOSS},
    "poisson": {"exp": K.Loss.POISSON},
}

LEAKY_RELU_SLOPE: float = 0.01
ELU_ALPHA: float = 1.0


def _choices(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def hidden_code(name: object) -> int:
    """Kernel code of a hidden activation, or a ValueError listing the options."""
    if not isinstance(name, str) or name not in HIDDEN_ACTIVATIONS:
        raise ValueError(
            f"unknown hidden activation {name!r}; choose one of {_choices(HIDDEN_ACTIVATIONS)}"
        )
    return HIDDEN_ACTIVATIONS[name]


def output_code(name: object) -> int:
    """Kernel code of an output activation, or a ValueError listing the options."""
    if not isinstance(name, str) or name not in OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"unknown output activation {name!r}; choose one of {_choices(OUTPUT_ACTIVATIONS)}"
        )
    return OUTPUT_ACTIVATIONS[name]


def loss_code(loss: object, output: object) -> int:
    """Kernel loss code for a (loss, output activation) pair."""
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {_choices(LOSSES)}")
    outputs = LOSSES[loss]
    if outputs is None:
        codes: dict[str, int] = {"squared_error": K.Loss.SQUARED_ERROR,
                                 "absolute_error": K.Loss.ABSOLUTE_ERROR, "huber": K.Loss.HUBER}
        return codes[loss]
    if output not in outputs:
        raise ValueError(
            f"loss {loss!r} needs the output activation to be one of {_choices(outputs)}, "
            f"got {output!r}"
        )
    return outputs[output]


def check_targets(loss: str, Y: np.ndarray) -> None:
    """Refuse targets outside the loss's domain, once per call (one pass).

    Log loss needs targets in [0, 1] (one-hot rows, 0/1 labels or soft
    labels), Poisson non-negative ones; the regression losses take any
    finite value.
    """
    if loss == "log_loss":
        lo, hi = float(Y.min()), float(Y.max())
        if lo < 0 or hi > 1:
            raise ValueError(
                f"log_loss needs targets in [0, 1] (one-hot rows or 0/1 labels), got values "
                f"in [{lo:g}, {hi:g}]; encode class labels with "
                "sklearn.preprocessing.LabelBinarizer"
            )
    elif loss == "poisson":
        lo = float(Y.min())
        if lo < 0:
            raise ValueError(
                f"poisson needs non-negative targets (counts or rates), got a minimum of {lo:g}"
            )
