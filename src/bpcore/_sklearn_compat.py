"""Every scikit-learn name bpcore borrows that scikit-learn may move, in one place.

bpcore's drop-in estimators reproduce scikit-learn 1.9 exactly: its parameter
validation (``_fit_context`` and the ``_parameter_constraints`` tables), its
sample-weight checks, its L-BFGS option handling and result checks, and its
``partial_fit`` first-call rule. Those are private helpers, which scikit-learn
may rename or move in any minor release; the random-number order and messages
bpcore reproduces may change with them. That is why bpcore pins
``scikit-learn>=1.9,<1.10`` (``SUPPORTED_SKLEARN``, the same range as in
``pyproject.toml``).

Everything version-sensitive is imported here and nowhere else, so that moving
to a new scikit-learn release means changing this one module and
``tests/test_sklearn_compat.py``, which checks that each name still exists
and still takes the arguments bpcore passes. If one is missing, importing
bpcore fails with an ``ImportError`` that names every missing symbol, the
supported range and the installed version.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

import sklearn

#: The scikit-learn releases bpcore supports; keep equal to the dependency in
#: pyproject.toml (a test checks it).
SUPPORTED_SKLEARN = ">=1.9,<1.10"

#: ``(module, name)`` of each version-sensitive name bpcore imports below.
PRIVATE_IMPORTS: tuple[tuple[str, str], ...] = (
    ("sklearn.base", "_fit_context"),
    ("sklearn.utils.fixes", "_get_additional_lbfgs_options_dict"),
    ("sklearn.utils.metaestimators", "available_if"),
    ("sklearn.utils.multiclass", "_check_partial_fit_first_call"),
    ("sklearn.utils.optimize", "_check_optimize_result"),
    ("sklearn.utils.validation", "_check_sample_weight"),
    ("sklearn.utils.validation", "validate_data"),
    ("sklearn.utils._param_validation", "HasMethods"),
    ("sklearn.utils._param_validation", "Interval"),
    ("sklearn.utils._param_validation", "StrOptions"),
    # New and experimental in 1.9: the callback protocol.
    ("sklearn.callback", "CallbackSupportMixin"),
    # Private attributes read from public classes.
    ("sklearn.neural_network.MLPClassifier", "_parameter_constraints"),
    ("sklearn.neural_network.MLPRegressor", "_parameter_constraints"),
    # What `_fit_context` calls on bpcore's estimators.
    ("sklearn.base.BaseEstimator", "_validate_params"),
)

#: Private names only bpcore's tests use (scikit-learn's own MLP test module,
#: which ``tests/test_sklearn_mlp_suite.py`` runs against bpcore's estimators).
TEST_PRIVATE_IMPORTS: tuple[tuple[str, str], ...] = (
    ("sklearn.neural_network.tests.test_mlp", "MLPClassifier"),
    ("sklearn.neural_network.tests.test_mlp", "MLPRegressor"),
)


def _resolve(path: str, name: str) -> Any:
    """``path.name``, where ``path`` is a module or a ``module.Class``."""
    try:
        obj: Any = importlib.import_module(path)
    except ImportError:
        module, _, cls = path.rpartition(".")
        obj = getattr(importlib.import_module(module), cls)
    return getattr(obj, name)


def missing_names(
    names: tuple[tuple[str, str], ...] = PRIVATE_IMPORTS,
) -> list[str]:
    """The ``module.name`` of each entry of ``names`` the installed scikit-learn lacks.

    Parameters
    ----------
    names : tuple of (str, str), default=PRIVATE_IMPORTS
        ``(module, name)`` pairs; ``module`` may end in a class name.

    Returns
    -------
    list of str
        Dotted names that could not be imported (empty when all are there).

    Examples
    --------
    >>> from bpcore._sklearn_compat import missing_names
    >>> missing_names()
    []
    """
    missing = []
    for path, name in names:
        try:
            _resolve(path, name)
        except (ImportError, AttributeError):
            missing.append(f"{path}.{name}")
    return missing


def unsupported_message(missing: list[str]) -> str:
    """The error message for scikit-learn names that are not where bpcore expects them.

    Parameters
    ----------
    missing : list of str
        Dotted names of the missing symbols.

    Returns
    -------
    str
        A message naming each missing symbol, the installed scikit-learn
        version, the supported range and how to install it.

    Examples
    --------
    >>> from bpcore._sklearn_compat import unsupported_message
    >>> print(unsupported_message(["sklearn.base._fit_context"])[:52])
    bpcore cannot find scikit-learn's sklearn.base._fit_
    """
    return (
        f"bpcore cannot find scikit-learn's {', '.join(missing)} in the installed "
        f"scikit-learn {sklearn.__version__}. bpcore reproduces scikit-learn "
        f"{SUPPORTED_SKLEARN} exactly and needs these private helpers from it; "
        f"install a supported version: pip install 'scikit-learn{SUPPORTED_SKLEARN}'."
    )


try:
    from sklearn.base import _fit_context as _sk_fit_context
    from sklearn.callback import CallbackSupportMixin
    from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
    from sklearn.neural_network import MLPClassifier as _SkMLPClassifier
    from sklearn.neural_network import MLPRegressor as _SkMLPRegressor
    from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
    from sklearn.utils.metaestimators import available_if as _sk_available_if
    from sklearn.utils.multiclass import _check_partial_fit_first_call
    from sklearn.utils.optimize import _check_optimize_result
    from sklearn.utils.validation import _check_sample_weight, validate_data

    #: scikit-learn's parameter-validation tables, which the drop-in
    #: estimators copy so their messages are scikit-learn's word for word.
    MLPCLASSIFIER_PARAMETER_CONSTRAINTS: dict[str, list[Any]] = dict(
        _SkMLPClassifier._parameter_constraints
    )
    MLPREGRESSOR_PARAMETER_CONSTRAINTS: dict[str, list[Any]] = dict(
        _SkMLPRegressor._parameter_constraints
    )
except (ImportError, AttributeError) as exc:  # pragma: no cover - needs another scikit-learn
    raise ImportError(unsupported_message(missing_names() or [str(exc)])) from exc

_Fit = TypeVar("_Fit", bound=Callable[..., Any])


def _fit_context(*, prefer_skip_nested_validation: bool) -> Callable[[_Fit], _Fit]:
    """scikit-learn's ``_fit_context`` decorator, typed: a decorated ``fit``
    keeps its signature for type checkers (scikit-learn ships no types, so
    through the bare decorator every ``fit`` returned ``Any``)."""
    decorator: Callable[[_Fit], _Fit] = _sk_fit_context(
        prefer_skip_nested_validation=prefer_skip_nested_validation)
    return decorator


def available_if(check: Callable[[Any], bool]) -> Callable[[_Fit], _Fit]:
    """scikit-learn's ``available_if``, typed like ``_fit_context``: to a type
    checker the method keeps its signature (at run time, scikit-learn's
    descriptor hides it where ``check`` is false)."""
    decorator: Callable[[_Fit], _Fit] = _sk_available_if(check)
    return decorator


__all__ = [
    "CallbackSupportMixin",
    "HasMethods",
    "Interval",
    "StrOptions",
    "MLPCLASSIFIER_PARAMETER_CONSTRAINTS",
    "MLPREGRESSOR_PARAMETER_CONSTRAINTS",
    "PRIVATE_IMPORTS",
    "SUPPORTED_SKLEARN",
    "TEST_PRIVATE_IMPORTS",
    "_check_optimize_result",
    "_check_partial_fit_first_call",
    "_check_sample_weight",
    "_fit_context",
    "_get_additional_lbfgs_options_dict",
    "available_if",
    "missing_names",
    "unsupported_message",
    "validate_data",
]
