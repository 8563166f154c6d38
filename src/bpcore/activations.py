"""Activation and loss registries: the one place where names become kernel codes.

Every name a user can pass maps here to a code of ``bpcore._kernels``; the
kernels never see a string. Error messages list the registry's keys, and the
tests parametrize over these dicts, so a new entry enrols itself.
"""
from . import _kernels as K

#: Hidden-layer activations: name -> kernel code. Derivatives are taken from
#: the activation's output, as scikit-learn does.
HIDDEN_ACTIVATIONS = {
    "identity": K.Activation.IDENTITY,
    "logistic": K.Activation.LOGISTIC,
    "tanh": K.Activation.TANH,
    "relu": K.Activation.RELU,
    "leaky_relu": K.Activation.LEAKY_RELU,  # slope 0.01 for z < 0
    "elu": K.Activation.ELU,                # alpha 1.0: alpha * (exp(z) - 1) for z < 0
}

#: Output activations: every hidden one, plus softmax (rows sum to 1) and exp.
OUTPUT_ACTIVATIONS = {**HIDDEN_ACTIVATIONS, "softmax": K.Activation.SOFTMAX, "exp": K.Activation.EXP}

#: Losses: name -> {output activation: kernel loss code}. ``None`` means any
#: output activation (the chain rule through it is applied in the kernel).
#: log_loss and poisson are defined only with their canonical output, whose
#: delta simplifies to ``output - y``.
LOSSES = {
    "squared_error": None,
    "log_loss": {"softmax": K.Loss.LOG_LOSS, "logistic": K.Loss.BINARY_LOG_LOSS},
    "poisson": {"exp": K.Loss.POISSON},
}

LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0


def _choices(names):
    return ", ".join(repr(n) for n in names)


def hidden_code(name):
    """Kernel code of a hidden activation, or a ValueError listing the options."""
    if not isinstance(name, str) or name not in HIDDEN_ACTIVATIONS:
        raise ValueError(
            f"unknown hidden activation {name!r}; choose one of {_choices(HIDDEN_ACTIVATIONS)}"
        )
    return HIDDEN_ACTIVATIONS[name]


def output_code(name):
    """Kernel code of an output activation, or a ValueError listing the options."""
    if not isinstance(name, str) or name not in OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"unknown output activation {name!r}; choose one of {_choices(OUTPUT_ACTIVATIONS)}"
        )
    return OUTPUT_ACTIVATIONS[name]


def loss_code(loss, output):
    """Kernel loss code for a (loss, output activation) pair."""
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {_choices(LOSSES)}")
    outputs = LOSSES[loss]
    if outputs is None:
        return K.Loss.SQUARED_ERROR
    if output not in outputs:
        raise ValueError(
            f"loss {loss!r} needs the output activation to be one of {_choices(outputs)}, "
            f"got {output!r}"
        )
    return outputs[output]
