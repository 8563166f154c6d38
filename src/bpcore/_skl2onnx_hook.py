"""Register bpcore's estimators with skl2onnx when skl2onnx is imported.

skl2onnx finds converters only in its own registry (it reads no entry
points), and importing it costs about a second and the ``onnx`` package, so
``import bpcore`` must not import it. Instead :func:`install` arranges that
``bpcore.onnx.register_skl2onnx()`` runs right after skl2onnx finishes
importing: at once if it already has, otherwise from a one-shot import hook
(a meta-path finder that wraps skl2onnx's own loader and removes itself).
``skl2onnx.to_onnx(est, X[:1])`` then works after ``import bpcore`` alone,
for bpcore's estimators and for pipelines holding them.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

_TARGET = "skl2onnx"


def _register() -> None:
    try:
        from .onnx import register_skl2onnx

        register_skl2onnx()
    except Exception as exc:  # a broken optional extra must not break skl2onnx's import
        warnings.warn(
            f"bpcore could not register its estimators with skl2onnx ({type(exc).__name__}: "
            f"{exc}); call bpcore.onnx.register_skl2onnx() to see the error.",
            RuntimeWarning, stacklevel=2)


class _Loader(importlib.abc.Loader):
    """skl2onnx's own loader, then the registration."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _register()


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of the first ``import skl2onnx``."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        _uninstall()  # one shot; also keeps the search below from finding us again
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec: importlib.machinery.ModuleSpec | None = (
                None if find is None else find(fullname, path, target))
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


_FINDER = _Finder()


def _uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def install() -> None:
    """Register now if skl2onnx is imported, else when it is (see the module doc)."""
    if _TARGET in sys.modules:
        _register()
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
