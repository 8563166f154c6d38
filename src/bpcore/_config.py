"""``bpcore.show_config()``: what this bpcore was built with and runs on.

One place for the facts a user (or a bug report) needs without reaching into
private modules: the version, whether the kernels were built with OpenMP,
the thread limit in force and the CPUs available, the BLAS libraries
(threadpoolctl), the versions of NumPy, SciPy and scikit-learn with the
scikit-learn releases the drop-in estimators support, and which optional
extras are installed.
"""
from __future__ import annotations

import importlib.metadata
import platform
import sys
from typing import Any, Literal, overload

#: Optional packages and the extra that installs each.
_OPTIONAL = (
    ("matplotlib", "plot"),
    ("tqdm", "progress"),
    ("onnx", "onnx"),
    ("onnxruntime", "onnx"),
    ("skl2onnx", "onnx"),
    ("dask", "dask"),
    ("dask_ml", "dask"),
    ("torch", "bench"),
    ("jax", "bench"),
)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _info() -> dict[str, Any]:
    import threadpoolctl

    from . import _kernels, _sklearn_compat, _threads
    from ._version import __version__

    blas = [
        {"library": p.get("internal_api"), "version": p.get("version"),
         "threads": p.get("num_threads"), "architecture": p.get("architecture"),
         "path": p.get("filepath")}
        for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"
    ]
    return {
        "bpcore": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "openmp": bool(_kernels.has_openmp()),
        "threads": _threads.thread_limit(),
        "available_cpus": _threads.available_cpus(),
        "blas": blas,
        "dependencies": {name: _version(name)
                         for name in ("numpy", "scipy", "scikit-learn", "threadpoolctl",
                                      "safetensors")},
        "supported_scikit_learn": getattr(_sklearn_compat, "SUPPORTED_SKLEARN", None),
        "optional": {name: _version(name.replace("_", "-")) for name, _ in _OPTIONAL},
    }


@overload
def show_config(mode: Literal["stdout"] = "stdout") -> None: ...
@overload
def show_config(mode: Literal["dicts"]) -> dict[str, Any]: ...


def show_config(mode: Literal["stdout", "dicts"] = "stdout") -> dict[str, Any] | None:
    """Print (or return) how bpcore was built and what it runs on.

    Parameters
    ----------
    mode : {"stdout", "dicts"}, default="stdout"
        ``"stdout"`` prints a short report; ``"dicts"`` returns the same facts
        as a dict (keys ``bpcore``, ``python``, ``platform``, ``openmp``,
        ``threads``, ``available_cpus``, ``blas``, ``dependencies``,
        ``supported_scikit_learn``, ``optional``), as ``numpy.show_config``
        does.

    Returns
    -------
    info : dict or None
        The facts with ``mode="dicts"``, else None.

    Notes
    -----
    ``openmp`` is False for a build without OpenMP (``BPCORE_OPENMP=0``, or a
    compiler without it): the kernels then run one thread, with the same
    results. ``threads`` is the limit bpcore's kernels use now (OpenMP's,
    capped at ``available_cpus`` unless set explicitly; see the threads
    guide). ``optional`` maps each optional package to its installed version
    or None.

    Examples
    --------
    >>> import bpcore
    >>> info = bpcore.show_config(mode="dicts")
    >>> isinstance(info["openmp"], bool), info["threads"] >= 1
    (True, True)
    >>> bpcore.show_config()  # doctest: +ELLIPSIS
    bpcore ...
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    info = _info()
    if mode == "dicts":
        return info
    extras = dict(_OPTIONAL)
    lines = [
        f"bpcore {info['bpcore']} on Python {info['python']} ({info['platform']})",
        f"kernels: built {'with' if info['openmp'] else 'WITHOUT'} OpenMP; "
        f"{info['threads']} thread(s) now, {info['available_cpus']} CPU(s) available",
    ]
    for b in info["blas"] or [{"library": "none found", "version": None, "threads": None,
                               "architecture": None, "path": None}]:
        owner = next((pkg for pkg in ("numpy", "scipy") if b["path"]
                      and f"{pkg}.libs" in str(b["path"])), None)
        lines.append(f"BLAS: {b['library']} {b['version'] or ''}"
                     f"{f' (bundled with {owner})' if owner else ''}, "
                     f"{b['architecture'] or 'unknown'} kernels, {b['threads']} threads")
    deps = ", ".join(f"{k} {v}" for k, v in info["dependencies"].items())
    lines.append(f"dependencies: {deps}")
    lines.append(f"drop-in parity supports scikit-learn {info['supported_scikit_learn']}")
    present = [f"{k} {v}" for k, v in info["optional"].items() if v]
    missing = [f"{k} ([{extras[k]}])" for k, v in info["optional"].items() if not v]
    lines.append(f"optional, installed: {', '.join(present) or 'none'}")
    if missing:
        lines.append(f"optional, missing: {', '.join(missing)}")
    print("\n".join(lines))
    return None
