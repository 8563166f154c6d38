"""Weight initializations: name -> how one layer's weights (and biases) are drawn.

``"sklearn"`` is scikit-learn's exact draw (weights, then biases, both from a
uniform Glorot range whose factor depends on the hidden activation). The
others are Keras' names for plain (not truncated) distributions of the
weights, with zero biases; ``N(0, v)`` below is a normal of variance ``v``:

============== ===================================
glorot_uniform U(-sqrt(6 / (fan_in + fan_out)), +)
glorot_normal  N(0, 2 / (fan_in + fan_out))
he_uniform     U(-sqrt(6 / fan_in), +)
he_normal      N(0, 2 / fan_in)
lecun_uniform  U(-sqrt(3 / fan_in), +)
lecun_normal   N(0, 1 / fan_in)
============== ===================================

Every draw is float64 from the network's ``RandomState``, layer by layer in
order, then cast to the network's dtype.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

#: One layer's draw: ``draw(fan_in, fan_out, activation, random_state) -> (W, b)``.
_Draw = Callable[[int, int, str, np.random.RandomState],
                tuple[NDArray[np.float64], NDArray[np.float64]]]


def _sklearn(fan_in: int, fan_out: int, activation: str,
             rs: np.random.RandomState) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    # scikit-learn's _init_coef: factor 2 for logistic, else 6; W then b.
    factor = 2.0 if activation == "logistic" else 6.0
    bound = np.sqrt(factor / (fan_in + fan_out))
    W = rs.uniform(-bound, bound, (fan_in, fan_out))
    b = rs.uniform(-bound, bound, fan_out)
    return W, b


def _uniform(limit: Callable[[int, int], float]) -> _Draw:
    def draw(fan_in: int, fan_out: int, activation: str,
             rs: np.random.RandomState) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        bound = limit(fan_in, fan_out)
        return rs.uniform(-bound, bound, (fan_in, fan_out)), np.zeros(fan_out)
    return draw


def _normal(variance: Callable[[int, int], float]) -> _Draw:
    def draw(fan_in: int, fan_out: int, activation: str,
             rs: np.random.RandomState) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        std = np.sqrt(variance(fan_in, fan_out))
        return rs.normal(0.0, std, (fan_in, fan_out)), np.zeros(fan_out)
    return draw


#: name -> draw(fan_in, fan_out, activation, random_state) -> (W, b)
INITIALIZERS: dict[str, _Draw] = {
    "sklearn": _sklearn,
    "glorot_uniform": _uniform(lambda fi, fo: np.sqrt(6.0 / (fi + fo))),
    "glorot_normal": _normal(lambda fi, fo: 2.0 / (fi + fo)),
    "he_uniform": _uniform(lambda fi, fo: np.sqrt(6.0 / fi)),
    "he_normal": _normal(lambda fi, fo: 2.0 / fi),
    "lecun_uniform": _uniform(lambda fi, fo: np.sqrt(3.0 / fi)),
    "lecun_normal": _normal(lambda fi, fo: 1.0 / fi),
}


def init_layer(
    name: str, fan_in: int, fan_out: int, activation: str, random_state: np.random.RandomState
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(W, b)`` of one layer drawn by the scheme ``name`` (float64)."""
    return INITIALIZERS[name](fan_in, fan_out, activation, random_state)
