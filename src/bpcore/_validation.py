"""Input checks shared by the core API: clear errors before any kernel runs."""
from __future__ import annotations

import math
import numbers
from typing import Any, cast

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, DTypeLike, NDArray

from . import _kernels

DTYPES: dict[str, type[np.float64] | type[np.float32]] = {
    "float64": np.float64, "float32": np.float32}

# scipy.sparse ships no type information: its matrices are Any to mypy.
_Sparse = Any


def check_dtype(dtype: DTypeLike) -> type[np.float64] | type[np.float32]:
    """Normalize a dtype argument to np.float32 or np.float64."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return DTYPES[cast(str, name)]  # not None: it is a key


def _first_nonfinite(a: NDArray[Any]) -> tuple[int, ...]:
    idx = np.argwhere(~np.isfinite(a))[0]
    return tuple(int(i) for i in idx)


# X: array-like, CSRInput or sparse matrix; Any, as the sparse case reads
# X.shape once the dense one (ArrayLike, which has none) has returned.
def as_input(
    X: Any, name: str, dtype: DTypeLike, n_columns: int | None = None
) -> NDArray[np.floating[Any]] | _kernels.CSRInput:
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
    if np.issubdtype(X.dtype, np.complexfloating):
        # (the conversion to a real dtype would silently drop the imaginary part)
        raise TypeError(f"{name} must be real, got complex values")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
        raise TypeError(f"{name} must be numeric, got a sparse matrix of dtype {X.dtype}")
    X = csr_input(X, dtype, name)
    if not np.isfinite(X.data).all():
        raise ValueError(f"{name} contains NaN or infinity; remove or impute those values first")
    return X


def csr_input(X: _Sparse, dtype: DTypeLike, name: str = "X") -> _kernels.CSRInput:
    """Any scipy.sparse matrix as the kernels' CSRInput (canonical CSR of
    ``dtype`` with intp indices).

    The structure is checked before SciPy converts anything (its conversions
    index memory by ``indptr`` and ``indices`` unchecked: a corrupt matrix
    crashed the process), and the arrays handed to the kernels are private:
    copied where they would share memory with the caller's matrix, and made
    read-only, so that changing the matrix afterwards cannot make the kernels
    read out of bounds. Copies at most once what the conversion did not.
    """
    check_sparse_structure(X, name)
    caller = _sparse_arrays(X)
    csr = X.tocsr()
    if csr.dtype != dtype:
        csr = csr.astype(dtype)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    nnz = int(csr.indptr[-1])
    return _kernels.CSRInput(
        _private(csr.data[:nnz], dtype, caller),
        _private(csr.indices[:nnz], np.intp, caller),
        _private(csr.indptr, np.intp, caller),
        csr.shape[0], csr.shape[1],
    )


def _sparse_arrays(X: _Sparse) -> list[NDArray[Any]]:
    """The caller's arrays behind a sparse matrix (any format)."""
    names = ("data", "indices", "indptr", "row", "col", "offsets")
    arrays = [getattr(X, n, None) for n in names]
    arrays += list(getattr(X, "coords", ()) or ())
    return [a for a in arrays if isinstance(a, np.ndarray)]


def _private(a: ArrayLike, dtype: DTypeLike, caller: list[NDArray[Any]]) -> NDArray[Any]:
    """``a`` as a read-only C-contiguous array of ``dtype`` sharing no memory
    with the caller's arrays (copied only if it would)."""
    out = np.ascontiguousarray(a, dtype=dtype)
    if any(np.may_share_memory(out, c) for c in caller):
        out = out.copy()
    out.flags.writeable = False
    return out


def check_sparse_structure(X: _Sparse, name: str) -> None:
    """Refuse a CSR/CSC/COO/BSR matrix whose index arrays are inconsistent.

    O(nnz) NumPy checks that leave ``X`` untouched (SciPy's
    ``check_format(full_check=True)`` checks the same but prunes and recasts
    the matrix in place); SciPy's own errors from ``check_format`` (BSR)
    become the same ValueError.
    """
    fmt = X.format
    if fmt in ("csr", "csc"):
        problem = _compressed_problem(X, fmt)
    elif fmt == "coo":
        problem = _coo_problem(X)
    elif fmt == "bsr":
        try:
            X.copy().check_format(full_check=True)
            problem = None
        except (ValueError, TypeError, IndexError) as exc:
            problem = str(exc)
    else:   # lil, dok, dia: no index array that SciPy walks unchecked
        problem = None
    if problem:
        raise ValueError(
            f"{name} is a malformed {fmt.upper()} sparse matrix: {problem}. Build it "
            f"with scipy.sparse's constructors and do not edit its index arrays in "
            f"place"
            + (" (check_format(full_check=True) checks it)" if fmt != "coo" else "")
        )


def _compressed_problem(X: _Sparse, fmt: str) -> str | None:
    data, indices, indptr = X.data, X.indices, X.indptr
    major, minor = X.shape if fmt == "csr" else X.shape[::-1]
    major_name, minor_name = ("row", "column") if fmt == "csr" else ("column", "row")
    if any(np.ndim(a) != 1 for a in (data, indices, indptr)):
        return "data, indices and indptr must be 1-D"
    for label, a in (("indices", indices), ("indptr", indptr)):
        if a.dtype.kind not in "iu":
            return f"{label} must be integers, got dtype {a.dtype}"
    if indptr.shape[0] != major + 1:
        return (f"indptr has {indptr.shape[0]} entries, expected {major + 1} "
                f"(one per {major_name}, plus one)")
    if indices.shape[0] != data.shape[0]:
        return f"indices has {indices.shape[0]} entries but data has {data.shape[0]}"
    if indptr[0] != 0:
        return f"indptr[0] is {indptr[0]}, expected 0"
    steps = np.diff(indptr)
    if (steps < 0).any():
        i = int(np.argmax(steps < 0))
        return (f"indptr must be non-decreasing, but indptr[{i}] = {indptr[i]} > "
                f"indptr[{i + 1}] = {indptr[i + 1]}")
    nnz = int(indptr[-1])
    if nnz > indices.shape[0]:
        return f"indptr[-1] = {nnz} exceeds the {indices.shape[0]} stored entries"
    return _index_problem(indices[:nnz], minor, f"{minor_name} index")


def _coo_problem(X: _Sparse) -> str | None:
    coords = tuple(getattr(X, "coords", None) or (X.row, X.col))
    if len(coords) != 2:
        return f"expected 2 coordinate arrays, got {len(coords)}"
    for label, c in zip(("row", "col"), coords):
        if np.ndim(c) != 1 or c.shape[0] != np.shape(X.data)[0]:
            return (f"{label} has shape {np.shape(c)} but data has "
                    f"{np.shape(X.data)[0]} entries")
        if c.dtype.kind not in "iu":
            return f"{label} must be integers, got dtype {c.dtype}"
    return (_index_problem(coords[0], X.shape[0], "row index")
            or _index_problem(coords[1], X.shape[1], "column index"))


def _index_problem(idx: NDArray[np.integer[Any]], bound: int, what: str) -> str | None:
    """First index outside [0, bound), described, or None."""
    if idx.shape[0] == 0:
        return None
    bad = (idx < 0) | (idx >= bound)
    if bad.any():
        i = int(np.argmax(bad))
        return f"{what} {idx[i]} at position {i} is out of range [0, {bound})"
    return None


def _from_pandas(a: Any) -> Any:
    """A pandas DataFrame or Series of nullable numeric columns (``Int64``,
    ``Float64``, ``boolean``, ...) as float64 with NA as NaN (which the
    callers refuse as they refuse NaN); anything else as it is.

    NumPy sees such columns as objects; scikit-learn's estimators convert
    them, and the core API does the same.
    """
    if not type(a).__module__.startswith("pandas") or not hasattr(a, "to_numpy"):
        return a
    # (pandas ships no types without pandas-stubs)
    from pandas.api.types import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
        is_numeric_dtype)
    dtypes = list(a.dtypes) if hasattr(a, "columns") else [getattr(a, "dtype", None)]
    if (not dtypes or all(isinstance(d, np.dtype) for d in dtypes)
            or not all(is_numeric_dtype(d) for d in dtypes)):
        return a            # plain NumPy columns (or non-numeric ones): as before
    return a.to_numpy(dtype=np.float64, na_value=np.nan)


def as_matrix(
    a: ArrayLike, name: str, dtype: DTypeLike, n_columns: int | None = None,
    allow_1d: bool = False,
) -> NDArray[np.floating[Any]]:
    """C-contiguous 2-D array of ``dtype`` with finite entries, copied only if needed."""
    if sp.issparse(a):
        raise TypeError(f"{name} must be a dense array, got a sparse matrix")
    arr = np.asarray(_from_pandas(a))
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


def as_sample_weight(
    sample_weight: ArrayLike | None, n_samples: int, dtype: DTypeLike
) -> NDArray[np.floating[Any]] | None:
    """Validated 1-D weights of ``dtype``, or None."""
    if sample_weight is None:
        return None
    sw = np.asarray(_from_pandas(sample_weight))
    if sw.ndim == 0:
        sw = np.full(n_samples, sw)
    if sw.ndim != 1 or sw.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), got {np.shape(sample_weight)}"
        )
    source = sw
    with np.errstate(over="ignore"):
        sw = np.ascontiguousarray(sw, dtype=dtype)
    if not np.isfinite(sw).all():
        where = _first_nonfinite(sw)
        if _is_number(source) and np.isfinite(source[where]):
            raise ValueError(
                f"sample_weight has values too large for {np.dtype(dtype).name} (first at "
                f"index {where[0]}: {float(source[where])!r}); scale them down, e.g. divide "
                "them by their mean (the weighted mean loss stays the same)")
        raise ValueError("sample_weight contains NaN or infinity")
    if (sw < 0).any():
        raise ValueError("sample_weight must be non-negative")
    with np.errstate(over="ignore"):
        total = sw.sum(dtype=np.float64)
    if not total > 0:
        raise ValueError("sample_weight sums to zero; at least one weight must be positive")
    # Weighted losses sum w * loss over a batch: weights near the top of the
    # float range overflow there, and the divergence would be blamed on the
    # learning rate.
    if not np.isfinite(total) or sw.max() > _WEIGHT_MAX[np.dtype(dtype).name]:
        raise ValueError(
            f"sample_weight is too large (largest {float(sw.max())!r}, sum {float(total)!r}): "
            "the weighted losses would overflow; scale them down, e.g. divide them by their "
            "mean (the weighted mean loss stays the same)")
    return sw


#: Largest sample weight taken: the weighted loss sums (w * loss, over a
#: batch) keep 1e100 (float32: 1e19) of headroom for the loss itself.
_WEIGHT_MAX = {"float64": 1e200, "float32": 1e19}


def _is_number(a: NDArray[Any]) -> bool:
    return bool(np.issubdtype(a.dtype, np.number)) and not np.iscomplexobj(a)


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(
    value: object, name: str, low: float | None = None, high: float | None = None,
    low_open: bool = False, high_open: bool = False,
) -> float:
    """A finite real number within [low, high] (ends open as asked)."""
    # Converted first: np.isfinite refuses some numbers.Real with a TypeError
    # of its own (a Fraction), and float() an int beyond its range.
    v = math.nan
    if not isinstance(value, bool) and isinstance(value, numbers.Real):
        try:
            v = float(value)
        except OverflowError:
            pass
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
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
