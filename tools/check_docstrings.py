"""numpydoc validation of bpcore's public API; exits non-zero on any error.

Walks every name in the ``__all__`` of the public modules (the ones the
reference documents, docs/api.rst), and for classes their public methods
and properties defined in bpcore (methods inherited from scikit-learn or
the standard library are theirs to document), and runs
``numpydoc.validate.validate`` on each. The checks enforced are
``CHECKS`` below: every parameter documented with a type and a description
line, no parameter documented that does not exist, a summary line, a
Returns section where something is returned; and an Examples section on
every top-level public name. Run from anywhere with bpcore importable::

    python tools/check_docstrings.py          # prints each error, then a count
"""
from __future__ import annotations

import importlib
import inspect
import sys
import warnings

from numpydoc.validate import validate

#: The modules whose ``__all__`` is the public API (docs/api.rst has a page for each).
PUBLIC_MODULES = ("bpcore", "bpcore.callbacks", "bpcore.schedules", "bpcore.dask",
                  "bpcore.benchmark", "bpcore.toolbox", "bpcore.onnx", "bpcore.plotting")
#: Public names outside any ``__all__`` that users are pointed to.
EXTRA_NAMES: tuple[str, ...] = ()

CHECKS = {
    "GL08",  # the object has no docstring
    "SS01", "SS02", "SS03",  # a summary exists, starts with a capital, ends with a period
    "PR01",  # every parameter documented (inherited ones included)
    "PR02",  # no documented parameter that the signature lacks
    "PR03",  # parameters in the signature's order
    "PR04",  # every parameter has a type
    "PR07",  # every parameter has a description line, not only its type
    "PR10",  # "name : type" with a space before the colon
    "RT01",  # a Returns section where the function returns something
}
# Not enforced: RT02 (numpydoc wants a lone return unnamed; bpcore names them,
# "self : object", as scikit-learn does), and the wording checks (PR08/PR09,
# ES01, SA01), which are taste.
#: Checked on top-level names only (methods: optional).
TOP_LEVEL_CHECKS = {"EX01"}  # an Examples section


def _members(cls: type, path: str) -> list[str]:
    names = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property) or inspect.isfunction(value):
            names.append(f"{path}.{name}")
    return names


def _targets() -> list[tuple[str, bool]]:
    out: dict[str, bool] = {}
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        out.setdefault(modname, True)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or callable(obj)):
                continue  # constants (SCHEDULES, TARGET_OPSET) are documented in their module
            home = getattr(obj, "__module__", "") or ""
            if not home.startswith("bpcore"):
                continue
            path = f"{modname}.{name}"
            out.setdefault(path, True)
            if inspect.isclass(obj):
                for member in _members(obj, path):
                    out.setdefault(member, False)
    for path in EXTRA_NAMES:
        out.setdefault(path, True)
    return list(out.items())


def _inherits_doc(path: str) -> bool:
    """True for a method without a docstring of its own that overrides a
    documented one (a callback's ``on_epoch_end``): the reference shows the
    inherited docstring (autodoc), so it is documented."""
    modname, _, rest = path.partition(".")
    obj: object = importlib.import_module(modname)
    for part in rest.split("."):
        obj = getattr(obj, part)
    if isinstance(obj, property):
        obj = obj.fget
    return not getattr(obj, "__doc__", None) and bool(inspect.getdoc(obj))


def main() -> int:
    # Module docstrings with sections of their own ("Design") are fine.
    warnings.filterwarnings("ignore", message="Unknown section", category=UserWarning)
    errors = 0
    targets = _targets()
    for path, top_level in targets:
        checks = CHECKS | (TOP_LEVEL_CHECKS if top_level else set())
        result = validate(path)
        for code, message in result["errors"]:
            if code == "GL08" and _inherits_doc(path):
                continue
            if code in checks:
                errors += 1
                print(f"{path}: {code} {message}")
    print(f"numpydoc validation: {len(targets)} public objects, {errors} error(s) "
          f"in the enforced checks ({', '.join(sorted(CHECKS | TOP_LEVEL_CHECKS))})")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
