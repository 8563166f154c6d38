"""Target scaling of the toolbox regressor: y is mapped to unit scale before
training and the network's outputs are mapped back.

The network learns ``Y' = (Y - offset) / scale`` (per column) and predicts
``out * scale + offset``. What ``offset`` and ``scale`` are depends on the
loss, so that the loss keeps its meaning (``scaling_from_moments``):

================ ======================== ===================================
loss             offset                   scale
================ ======================== ===================================
squared_error,   weighted mean of y       weighted standard deviation of y
absolute_error,                           (biased, as ``StandardScaler``'s)
huber
poisson          0 (no centering: y >= 0  weighted mean of y, so that
                 must stay >= 0)          ``exp``'s starting output of ~1 is
                                          the mean; the log link adds
                                          ``log(scale)`` to the output bias
================ ======================== ===================================

A scale that is zero (a constant column; a Poisson column of zeros) or lost
in the offset's rounding is 1, as in ``StandardScaler``. The arithmetic is
float64; predictions are mapped in the output's dtype (as the ONNX graph
does).

The functions are stateless: the estimator keeps ``target_offset_`` and
``target_scale_`` (float64 arrays of shape ``(n_outputs,)``, or None when
the target is not scaled), which persistence and ONNX export read.
"""
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

#: The values of ``NeuralNetRegressor(target_scaling=...)``.
TARGET_SCALINGS = ("auto", "standard", None)

# "Far from the output's starting range": the identity output of a freshly
# initialized network is O(1) around 0 (scikit-learn's Glorot-uniform draw
# includes the output bias), and Adam moves each weight by at most about
# learning_rate_init per step, so a target whose mean sits many units away,
# or whose spread is many units wide, costs thousands of steps before the
# output reaches it; on diabetes (mean 152, sd 77) scikit-learn's default MLP
# ends at R^2 < 0 (issue 28).
FAR_MEAN = 3.0          # |mean| > FAR_MEAN * max(sd, 1)
FAR_SD = 10.0           # or sd > FAR_SD


def target_moments(Y: Any, sample_weight: Any = None) -> tuple[Any, Any]:
    """Weighted mean and (biased) variance of each column of the 2-D ``Y``.

    Written with array methods only, so that a dask array gives lazy
    results (``dask.compute`` them) and NumPy gives arrays.
    """
    if sample_weight is None:
        n = Y.shape[0]
        mean = Y.sum(axis=0) / n
        var = ((Y - mean) ** 2).sum(axis=0) / n
    else:
        w = sample_weight.reshape(-1, 1)
        total = w.sum()
        mean = (w * Y).sum(axis=0) / total
        var = (w * (Y - mean) ** 2).sum(axis=0) / total
    return mean, var


def scaling_from_moments(mean: Any, var: Any, loss: str) -> tuple[Array, Array]:
    """``(offset, scale)`` for a loss, from the columns' weighted moments."""
    mean = np.asarray(mean, dtype=np.float64).ravel()
    var = np.asarray(var, dtype=np.float64).ravel()
    if loss == "poisson":
        offset, scale = np.zeros_like(mean), mean.copy()
    else:
        offset, scale = mean, np.sqrt(var)
    # As StandardScaler's _handle_zeros_in_scale: a spread below the rounding
    # of the values themselves is no spread.
    tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
    scale[~(scale > tiny)] = 1.0
    return offset, scale


def numpy_moments(Y: Any, sample_weight: Any = None) -> tuple[Array, Array]:
    """``target_moments`` of an in-memory target, in float64."""
    Y = np.asarray(Y, dtype=np.float64)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if sw is not None and not sw.sum() > 0:
        sw = None       # all-zero weights: nothing to weigh by (the fit refuses them later)
    return target_moments(Y, sw)


def scale_target(Y: Any, offset: Optional[Array], scale: Optional[Array]) -> Any:
    """The network's target ``(Y - offset) / scale`` (float64); ``Y`` when
    unscaled. A dask array stays lazy."""
    if scale is None or offset is None:
        return Y
    if not hasattr(Y, "chunks"):
        Y = np.asarray(Y, dtype=np.float64)
    return (Y - offset) / scale


def unscale_output(out: Any, offset: Optional[Array], scale: Optional[Array]) -> Any:
    """The estimator's prediction ``out * scale + offset``, in ``out``'s dtype;
    ``out`` itself when unscaled. Broadcasts over a 1-D single-output ``out``."""
    if scale is None or offset is None:
        return out
    out = np.asarray(out)
    return out * scale.astype(out.dtype) + offset.astype(out.dtype)


def _far_columns(mean: Any, var: Any) -> NDArray[np.bool_]:
    distance: Array = np.abs(np.asarray(mean, dtype=np.float64))
    sd: Array = np.sqrt(np.asarray(var, dtype=np.float64))
    far: NDArray[np.bool_] = (distance > FAR_MEAN * np.maximum(sd, 1.0)) | (sd > FAR_SD)
    return far


def far_from_output_range(mean: Any, var: Any) -> bool:
    """True when some column's mean or spread is far from an identity output's
    starting range (``FAR_MEAN``, ``FAR_SD``)."""
    return bool(np.any(_far_columns(mean, var)))


def far_target_message(mean: Any, var: Any) -> str:
    """The warning for a far target that is not scaled: what, and what to do."""
    mean = np.asarray(mean, dtype=np.float64)
    sd = np.sqrt(np.asarray(var, dtype=np.float64))
    col = int(np.flatnonzero(_far_columns(mean, var))[0])
    where = f" (column {col})" if mean.size > 1 else ""
    return (
        f"The target{where} has mean {mean[col]:.4g} and standard deviation "
        f"{sd[col]:.4g}, far from the network output's starting range (about 0 "
        "+/- 1), so training is slow to reach it and can end far from it. Set "
        "target_scaling='standard' to standardize y for training (predictions are "
        "mapped back), or target_scaling=None to keep y as it is and silence this "
        "warning.")


def check_fitted_scaling(est: Any) -> None:
    """Refuse a target scaling that a regressor cannot predict with (a loaded
    model): both None, or finite float64 arrays of shape ``(n_outputs_,)``
    with positive scales. A no-op for estimators without the attributes."""
    state = vars(est)
    if "target_offset_" not in state and "target_scale_" not in state:
        return
    offset, scale = state.get("target_offset_"), state.get("target_scale_")
    if offset is None and scale is None:
        return
    n = state.get("n_outputs_")
    for name, a in (("target_offset_", offset), ("target_scale_", scale)):
        if not (isinstance(a, np.ndarray) and a.dtype == np.float64 and a.ndim == 1
                and isinstance(n, int) and a.shape == (n,) and np.isfinite(a).all()):
            raise ValueError(
                f"{type(est).__name__}.{name} must be a finite float64 array of shape "
                f"(n_outputs_,) = ({n},), or None together with the other target "
                f"scaling attribute; got {_describe(a)}. The file is damaged or was "
                "altered; save the model again")
    if not (scale > 0).all():
        raise ValueError(f"{type(est).__name__}.target_scale_ must be positive, got {scale}; "
                         "the file is damaged or was altered; save the model again")


def _describe(a: Any) -> str:
    if isinstance(a, np.ndarray):
        return f"an array of dtype {a.dtype} and shape {a.shape}"
    return repr(a) if a is None else type(a).__name__
