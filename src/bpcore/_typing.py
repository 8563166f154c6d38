"""Type aliases of the public signatures (for annotations only)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .estimators import _BaseMLP

#: Dense input, or a scipy.sparse matrix or array (scipy ships no types).
MatrixLike = Union[ArrayLike, Any]
#: What scikit-learn's ``check_random_state`` takes.
RandomStateLike = Union[int, np.random.RandomState, None]
#: ``fit`` and ``partial_fit`` return the estimator itself, typed as its own
#: class (``def fit(self: Self, ...) -> Self``; ``typing.Self`` is Python 3.11).
Self = TypeVar("Self", bound="_BaseMLP")
