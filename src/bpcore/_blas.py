"""Which BLAS the kernels call, and BLAS on one thread while they run.

``gemm_split_setting`` reads the BLAS core (threadpoolctl) once at import
to tell the kernels how far to cut a GEMM; ``_single_threaded_blas`` is the
process-wide context that keeps BLAS on one thread while our own threads
split the work (when that pays: ``_engine.blas_threads_pay``).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from . import _kernels

# OpenBLAS cores whose kernels include the small-matrix GEMM path that
# _kernels._gemm cuts products down to (KERNEL.SKYLAKEX; Cooper Lake and
# Sapphire Rapids build on it).
_SMALL_GEMM_CORES = ("skylakex", "cooperlake", "sapphirerapids")
_MAX_GEMM_PIECES = 4


def _scipy_blas_info(infos: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """threadpoolctl's entry for the BLAS scipy.linalg.cython_blas calls, or None.

    SciPy's wheels bundle their own OpenBLAS (``scipy.libs``, LP64
    ``libscipy_openblas``); NumPy's may be loaded beside it (ILP64,
    ``libscipy_openblas64_``). Elsewhere (conda, distributions) a single
    shared BLAS serves both.
    """
    blas = [i for i in infos if i.get("user_api") == "blas"]
    for info in blas:
        path = info.get("filepath") or ""
        if os.path.basename(os.path.dirname(path)) == "scipy.libs":
            return info
    if len({i.get("filepath") for i in blas}) == 1:
        return blas[0]
    return None


def gemm_split_setting(infos: Iterable[dict[str, Any]] | None = None,
                       environ: Mapping[str, str] = os.environ) -> int:
    """How many row blocks ``_kernels._gemm`` may cut a GEMM into (1: never).

    ``BPCORE_GEMM_SPLIT=<n>`` overrides; otherwise 4 when SciPy's BLAS is
    OpenBLAS running one of ``_SMALL_GEMM_CORES``, else 1 (with other
    kernels the cut only adds calls: 4-11% slower, docs/DESIGN.md).
    """
    value = environ.get("BPCORE_GEMM_SPLIT", "").strip()
    if value:
        try:
            pieces = int(value)
        except ValueError:
            raise ValueError("BPCORE_GEMM_SPLIT must be a whole number of row "
                             "blocks (1 turns the cut off), got %r" % value) from None
        if pieces < 0:
            raise ValueError("BPCORE_GEMM_SPLIT must be >= 0, got %d" % pieces)
        return pieces
    if infos is None:
        try:
            from threadpoolctl import threadpool_info
            infos = threadpool_info()
        except Exception:  # a speed heuristic must never stop the import
            return 1
    info = _scipy_blas_info(infos)
    if (info is not None and info.get("internal_api") == "openblas"
            and str(info.get("architecture", "")).lower() in _SMALL_GEMM_CORES):
        return _MAX_GEMM_PIECES
    return 1


_kernels.set_gemm_split(gemm_split_setting())

# threadpoolctl's library controllers are Any to mypy (it ships no types).
_blas_controller: tuple[Any, ...] | None = None
_blas_lock = threading.Lock()
_blas_users = 0          # open _single_threaded_blas contexts, all threads
_blas_restore: tuple[tuple[Any, int], ...] = ()  # (library controller, its thread count) to restore


def _kernel_blas_libs() -> tuple[Any, ...]:
    """threadpoolctl's controllers of the BLAS the kernels call: SciPy's own
    OpenBLAS when it is identified (``_scipy_blas_info``; NumPy's beside it
    runs none of our products), else every BLAS. Each one limited costs
    ~2.5 us per context (two ctypes calls there, two back)."""
    from threadpoolctl import ThreadpoolController
    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    scipy_libs = [lib for lib in libs
                  if os.path.basename(os.path.dirname(lib.filepath or "")) == "scipy.libs"]
    return tuple(scipy_libs or libs)


class _SingleThreadedBLAS:
    """BLAS on one thread while at least one of these contexts is open.

    threadpoolctl's limit is process-wide and restores, on exit, the count it
    found on entry: two overlapping limits in two threads (``predict`` is
    re-entrant) could leave BLAS on one thread for good (the second saw the
    first's 1 and restored it last). Here the first context to open sets the
    limit, the last to close restores the counts found by the first, and
    nothing is set when every BLAS already runs one thread
    (``threadpool_limits(1)`` around the fit: threadpoolctl's limit cost
    ~13 us per epoch, 1% of a digits epoch).
    """

    __slots__ = ()

    def __enter__(self) -> _SingleThreadedBLAS:
        global _blas_controller, _blas_users, _blas_restore
        with _blas_lock:
            if _blas_users == 0:
                if _blas_controller is None:
                    _blas_controller = _kernel_blas_libs()
                restore: list[tuple[Any, int]] = []
                for lib in _blas_controller:
                    n = lib.num_threads
                    if n != 1:
                        lib.set_num_threads(1)
                        restore.append((lib, n))
                _blas_restore = tuple(restore)
            _blas_users += 1
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        global _blas_users, _blas_restore
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                for lib, n in _blas_restore:
                    lib.set_num_threads(n)
                _blas_restore = ()
        return False


_SINGLE_BLAS = _SingleThreadedBLAS()


def _single_threaded_blas() -> _SingleThreadedBLAS:
    """Context that limits BLAS to one thread (our own threads split the work,
    or the products are too small for BLAS threads to pay)."""
    return _SINGLE_BLAS
