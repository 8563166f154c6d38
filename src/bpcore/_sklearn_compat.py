"""Every scikit-learn name bpcore borrows that scikit-learn may move, in one place.

bpcore's drop-in estimators reproduce **the installed** scikit-learn exactly:
its parameter validation (``_fit_context`` and the ``_parameter_constraints``
tables), its sample-weight checks, its L-BFGS option handling and result
checks, and its ``partial_fit`` first-call rule. Those are private helpers,
which scikit-learn may rename or move in any minor release. bpcore supports
scikit-learn 1.6 to 1.9 (``SUPPORTED_SKLEARN``, the same range as in
``pyproject.toml``, with no upper pin) and is tested against each of them
(``TESTED_SKLEARN``).

What differs between those releases is decided here and nowhere else:

- ``sklearn.callback`` (the callback protocol, new and experimental in 1.9):
  before 1.9, ``CallbackSupportMixin`` is a stand-in whose ``set_callbacks``
  is unavailable (``hasattr`` is False; calling it raises an
  ``AttributeError`` whose cause says that it needs scikit-learn >= 1.9) and
  whose callback context does nothing.
- ``sklearn.utils.fixes._get_additional_lbfgs_options_dict`` (1.7): before
  it, scikit-learn passed ``iprint`` to scipy as it is; so does bpcore.
- ``MLPRegressor(loss=...)`` and ``sample_weight`` in ``fit``/``partial_fit``
  (1.7): on 1.6 bpcore keeps both (results match 1.7's, which are 1.6's when
  ``loss='squared_error'`` and no weights are given), validates ``loss``
  with 1.7's constraint, and takes the positional arguments 1.6 takes:
  ``MLPRegressor((64,))`` means ``hidden_layer_sizes`` there and
  ``clf.partial_fit(X, y, classes)`` passes ``classes``
  (``keyword_only_before``).

On a scikit-learn newer than the newest tested release, importing bpcore
warns once (``UntestedSklearnWarning``) that results have not been checked
against it, and the estimators keep working as long as the helpers below are
where they were; if one has moved, importing bpcore fails with an
``ImportError`` naming every missing symbol, the tested range and the fix.
``tests/test_sklearn_compat.py`` checks that each name still exists and still
takes the arguments bpcore passes.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import warnings
from typing import Any, Callable, TypeVar

import sklearn

#: The scikit-learn releases bpcore supports; keep equal to the dependency in
#: pyproject.toml (a test checks it). No upper bound: see the module docstring.
SUPPORTED_SKLEARN = ">=1.6"

#: The oldest and newest scikit-learn minor releases bpcore is tested against
#: (every release between them is tested too).
TESTED_SKLEARN: tuple[tuple[int, int], tuple[int, int]] = ((1, 6), (1, 9))


def _minor_version(version: str) -> tuple[int, int]:
    """``(major, minor)`` of a version string such as ``'1.9.1'`` or ``'1.10.dev0'``."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:  # pragma: no cover - scikit-learn always has one
        raise ValueError(f"cannot read a version number from {version!r}")
    return int(match.group(1)), int(match.group(2))


#: ``(major, minor)`` of the installed scikit-learn.
SKLEARN_VERSION: tuple[int, int] = _minor_version(sklearn.__version__)

#: scikit-learn's callback protocol (``sklearn.callback``), 1.9 and later.
HAS_CALLBACKS: bool = SKLEARN_VERSION >= (1, 9)

#: ``MLPRegressor(loss=...)`` and ``sample_weight`` in the MLPs' ``fit`` and
#: ``partial_fit``, 1.7 and later.
HAS_MLP_LOSS_AND_SAMPLE_WEIGHT: bool = SKLEARN_VERSION >= (1, 7)

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

#: The first scikit-learn release with each name of ``PRIVATE_IMPORTS`` that
#: is not in all supported releases (before it, bpcore does without).
ADDED_IN: dict[tuple[str, str], tuple[int, int]] = {
    ("sklearn.utils.fixes", "_get_additional_lbfgs_options_dict"): (1, 7),
    ("sklearn.callback", "CallbackSupportMixin"): (1, 9),
}

#: Private names only bpcore's tests use (scikit-learn's own MLP test module,
#: which ``tests/test_sklearn_mlp_suite.py`` runs against bpcore's estimators).
TEST_PRIVATE_IMPORTS: tuple[tuple[str, str], ...] = (
    ("sklearn.neural_network.tests.test_mlp", "MLPClassifier"),
    ("sklearn.neural_network.tests.test_mlp", "MLPRegressor"),
)


def expected_here(path: str, name: str) -> bool:
    """Whether the installed scikit-learn should have ``path.name`` (see ``ADDED_IN``)."""
    return SKLEARN_VERSION >= ADDED_IN.get((path, name), (0, 0))


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

    Names that the installed release predates (``ADDED_IN``) are not missing.

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
        if not expected_here(path, name):
            continue
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
    oldest, newest = _tested_range()
    return (
        f"bpcore cannot find scikit-learn's {', '.join(missing)} in the installed "
        f"scikit-learn {sklearn.__version__}. bpcore reproduces scikit-learn "
        f"{oldest} to {newest} exactly and needs these private helpers from it; "
        f"install one of those releases: pip install 'scikit-learn>={oldest},<{_next(newest)}'."
    )


def _tested_range() -> tuple[str, str]:
    """The oldest and newest tested scikit-learn releases: ``('1.6', '1.9')``."""
    oldest, newest = (f"{major}.{minor}" for major, minor in TESTED_SKLEARN)
    return oldest, newest


def _next(minor_version: str) -> str:
    """The minor release after ``'1.9'``: ``'1.10'``."""
    major, minor = minor_version.split(".")
    return f"{major}.{int(minor) + 1}"



class UntestedSklearnWarning(UserWarning):
    """The installed scikit-learn is newer than any bpcore was tested against."""


def untested_message(version: str) -> str | None:
    """The warning for a scikit-learn ``version`` newer than the newest tested
    release, or None for a tested one.

    Examples
    --------
    >>> from bpcore._sklearn_compat import untested_message
    >>> untested_message("1.9.1") is None
    True
    >>> print(untested_message("1.10.0")[:60])
    bpcore was tested with scikit-learn 1.6 to 1.9, not with the
    """
    if _minor_version(version) <= TESTED_SKLEARN[1]:
        return None
    oldest, newest = _tested_range()
    return (
        f"bpcore was tested with scikit-learn {oldest} to {newest}, not with the "
        f"installed {version}: its MLPClassifier and MLPRegressor work, but are not "
        f"checked to give this release's numbers, messages and validation bit for "
        f"bit. Install 'scikit-learn<{_next(newest)}' for guaranteed parity, or a "
        "bpcore release tested with this scikit-learn."
    )


_Func = TypeVar("_Func", bound=Callable[..., Any])


def keyword_only_before(version: tuple[int, int], *names: str) -> Callable[[_Func], _Func]:
    """Make the parameters ``names`` of a method keyword-only on a scikit-learn
    older than ``version``: the signature scikit-learn had before it added them.

    scikit-learn 1.7 put ``loss`` first in ``MLPRegressor(loss, hidden_layer_sizes,
    ...)`` and ``sample_weight`` before ``classes`` in ``MLPClassifier.partial_fit``;
    on 1.6, ``MLPRegressor((64,))`` must still mean ``hidden_layer_sizes=(64,)``.
    The parameters stay (as keywords, first among the keyword-only ones);
    ``inspect.signature`` and so ``get_params`` show the installed release's order.
    """

    def decorate(method: _Func) -> _Func:
        if SKLEARN_VERSION >= version:
            return method
        signature = inspect.signature(method)
        params = list(signature.parameters.values())
        moved = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                 for p in params if p.name in names]
        kept = [p for p in params if p.name not in names]
        first_keyword = next((i for i, p in enumerate(kept)
                              if p.kind is inspect.Parameter.KEYWORD_ONLY), len(kept))
        installed = signature.replace(
            parameters=kept[:first_keyword] + moved + kept[first_keyword:])

        @functools.wraps(method)
        def with_installed_signature(*args: Any, **kwargs: Any) -> Any:
            return method(**installed.bind(*args, **kwargs).arguments)

        with_installed_signature.__signature__ = installed  # type: ignore[attr-defined]
        return with_installed_signature  # type: ignore[return-value]

    return decorate


#: ``MLPRegressor.__init__`` as the installed scikit-learn orders it (1.7 put
#: ``loss`` first).
regressor_init_signature = keyword_only_before((1, 7), "loss")

#: ``MLPClassifier.partial_fit`` as the installed scikit-learn orders it (1.7
#: put ``sample_weight`` before ``classes``).
classifier_partial_fit_signature = keyword_only_before((1, 7), "sample_weight")


class _NoCallbackContext:
    """The callback context of a scikit-learn without ``sklearn.callback``:
    there are no callbacks to call, and no callback asks to stop."""

    def subcontext(self, **kwargs: Any) -> _NoCallbackContext:
        return self

    def call_on_fit_task_begin(self, **kwargs: Any) -> None:
        return None

    def call_on_fit_task_end(self, **kwargs: Any) -> bool:
        return False


def _refuse_callbacks(estimator: Any) -> bool:
    raise AttributeError(
        f"set_callbacks needs scikit-learn's callback protocol (sklearn.callback), "
        f"new in scikit-learn 1.9; the installed scikit-learn is {sklearn.__version__}. "
        "Upgrade it (pip install 'scikit-learn>=1.9') or train without "
        "scikit-learn callbacks (bpcore's own callbacks work on every release)."
    )


def callbacks_available(estimator: Any) -> bool:
    """``available_if`` check of an estimator's ``set_callbacks``: True with
    scikit-learn's callback protocol (1.9), else the ``AttributeError`` that
    says why it is absent."""
    return True if HAS_CALLBACKS else _refuse_callbacks(estimator)


try:
    from sklearn.base import _fit_context as _sk_fit_context
    from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
    from sklearn.neural_network import MLPClassifier as _SkMLPClassifier
    from sklearn.neural_network import MLPRegressor as _SkMLPRegressor
    from sklearn.utils.metaestimators import available_if as _sk_available_if
    from sklearn.utils.multiclass import _check_partial_fit_first_call
    from sklearn.utils.optimize import _check_optimize_result
    from sklearn.utils.validation import _check_sample_weight, validate_data

    if HAS_CALLBACKS:
        from sklearn.callback import CallbackSupportMixin
    else:

        class CallbackSupportMixin:  # type: ignore[no-redef]
            """scikit-learn < 1.9 has no callback protocol: ``set_callbacks``
            is unavailable (with the reason as the ``AttributeError``'s cause)
            and the fit's callback context does nothing."""

            @_sk_available_if(_refuse_callbacks)  # type: ignore[untyped-decorator]
            def set_callbacks(self, *callbacks: Any) -> Any:  # pragma: no cover - refused
                raise AssertionError("unreachable: available_if refuses it")

            def _init_callback_context(self, task_name: str = "fit", task_id: int = 0,
                                       max_subtasks: int | None = 0,
                                       sequential_subtasks: bool = True) -> Any:
                return _NoCallbackContext()

    if SKLEARN_VERSION >= (1, 7):
        from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
    else:

        def _get_additional_lbfgs_options_dict(key: str, value: Any) -> dict[str, Any]:
            """scikit-learn 1.6 passes L-BFGS's ``iprint`` to scipy as it is."""
            return {key: value}

    #: scikit-learn's parameter-validation tables, which the drop-in
    #: estimators copy so their messages are scikit-learn's word for word.
    MLPCLASSIFIER_PARAMETER_CONSTRAINTS: dict[str, list[Any]] = dict(
        _SkMLPClassifier._parameter_constraints
    )
    MLPREGRESSOR_PARAMETER_CONSTRAINTS: dict[str, list[Any]] = dict(
        _SkMLPRegressor._parameter_constraints
    )
    if not HAS_MLP_LOSS_AND_SAMPLE_WEIGHT:
        # 1.6 has no `loss`; bpcore keeps it, validated as 1.7 does.
        MLPREGRESSOR_PARAMETER_CONSTRAINTS["loss"] = [StrOptions({"squared_error", "poisson"})]
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

_untested = untested_message(sklearn.__version__)
if _untested is not None:  # pragma: no cover - needs an untested scikit-learn
    # Once per process: this module is imported once.
    warnings.warn(_untested, UntestedSklearnWarning, stacklevel=2)

__all__ = [
    "ADDED_IN",
    "CallbackSupportMixin",
    "callbacks_available",
    "HAS_CALLBACKS",
    "HAS_MLP_LOSS_AND_SAMPLE_WEIGHT",
    "HasMethods",
    "Interval",
    "StrOptions",
    "MLPCLASSIFIER_PARAMETER_CONSTRAINTS",
    "MLPREGRESSOR_PARAMETER_CONSTRAINTS",
    "PRIVATE_IMPORTS",
    "SKLEARN_VERSION",
    "SUPPORTED_SKLEARN",
    "TESTED_SKLEARN",
    "TEST_PRIVATE_IMPORTS",
    "_check_optimize_result",
    "_check_partial_fit_first_call",
    "_check_sample_weight",
    "_fit_context",
    "_get_additional_lbfgs_options_dict",
    "UntestedSklearnWarning",
    "available_if",
    "classifier_partial_fit_signature",
    "expected_here",
    "keyword_only_before",
    "missing_names",
    "regressor_init_signature",
    "unsupported_message",
    "untested_message",
    "validate_data",
]
