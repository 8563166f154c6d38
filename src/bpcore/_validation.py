"""Input checks shared by the core API: clear errors before any kernel runs."""
import numbers

import numpy as np
import scipy.sparse as sp

from . import _kernels

DTYPES = {"float64": np.float64, "float32": np.float32}


def check_dtype(dtype):
    """Normalize a dtype argument to np.float32 or np.float64."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return DTYPES[name]


def _first_nonfinite(a):
    idx = np.argwhere(~np.isfinite(a))[0]
    return tuple(int(i) for i in idx)


def as_input(X, name, dtype, n_columns=None):
    """The network input: a checked dense array, or a sparse matrix as CSRInput.

    A sparse matrix (any scipy.sparse format) is converted to CSR with intp
    indices, at most one copy; the kernels multiply its rows directly.
    """
    if isinstance(X, _kernels.CSRInput):   # already converted (the estimators)
        if X.data.dtype != dtype or (n_columns is not None and X.n_cols != n_columns):
            raise ValueError(f"{name} has {X.n_cols} columns of {X.data.dtype}, "
                             f"expected {n_columns} of {np.dtype(dtype).name}")
        return X
    if not sp.issparse(X):
        return as_matrix(X, name, dtype, n_columns)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no rows; at least one sample is required")
    if n_columns is not None and X.shape[1] != n_columns:
        raise ValueError(f"{name} has {X.shape[1]} columns, expected {n_columns}")
    X = csr_input(X, dtype)
    if not np.isfinite(X.data).all():
        raise ValueError(f"{name} contains NaN or infinity; remove or impute those values first")
    return X


def csr_input(X, dtype):
    """Any scipy.sparse matrix as the kernels' CSRInput (canonical CSR of
    ``dtype`` with intp indices); copies only what needs converting."""
    csr = X.tocsr()
    if csr.dtype != dtype:
        csr = csr.astype(dtype)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    return _kernels.CSRInput(
        np.ascontiguousarray(csr.data, dtype=dtype),
        np.ascontiguousarray(csr.indices, dtype=np.intp),
        np.ascontiguousarray(csr.indptr, dtype=np.intp),
        csr.shape[0], csr.shape[1],
    )


def as_matrix(a, name, dtype, n_columns=None, allow_1d=False):
    """C-contiguous 2-D array of ``dtype`` with finite entries, copied only if needed."""
    if sp.issparse(a):
        raise TypeError(f"{name} must be a dense array, got a sparse matrix")
    arr = np.asarray(a)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
    ):
        raise TypeError(f"{name} must be numeric, got an array of dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got complex values")
    if arr.ndim == 1 and allow_1d:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (n_samples, n_columns), got shape {arr.shape}"
            + ("; reshape a single column with x.reshape(-1, 1)" if arr.ndim == 1 else "")
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no rows; at least one sample is required")
    if n_columns is not None and arr.shape[1] != n_columns:
        raise ValueError(f"{name} has {arr.shape[1]} columns, expected {n_columns}")
    source = arr
    with np.errstate(over="ignore"):
        arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        where = _first_nonfinite(arr)
        if np.isfinite(source[where]):
            raise ValueError(
                f"{name} has values too large for {np.dtype(dtype).name} (first at index "
                f"{where}: {source[where]!r}); scale the data or use dtype='float64'"
            )
        raise ValueError(
            f"{name} contains NaN or infinity (first at index {where}); "
            "remove or impute those values first"
        )
    return arr


def as_sample_weight(sample_weight, n_samples, dtype):
    """Validated 1-D weights of ``dtype``, or None."""
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight)
    if sw.ndim == 0:
        sw = np.full(n_samples, sw)
    if sw.ndim != 1 or sw.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), got {np.shape(sample_weight)}"
        )
    sw = np.ascontiguousarray(sw, dtype=dtype)
    if not np.isfinite(sw).all():
        raise ValueError("sample_weight contains NaN or infinity")
    if (sw < 0).any():
        raise ValueError("sample_weight must be non-negative")
    if not sw.sum() > 0:
        raise ValueError("sample_weight sums to zero; at least one weight must be positive")
    return sw


def check_positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(value, name, low=None, high=None, low_open=False, high_open=False):
    """A finite real number within [low, high] (ends open as asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    v = float(value)
    bad = (
        (low is not None and (v < low or (low_open and v == low)))
        or (high is not None and (v > high or (high_open and v == high)))
    )
    if bad:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        rng = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
        raise ValueError(f"{name} must be in {rng}, got {value!r}")
    return v
