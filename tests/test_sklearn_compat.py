"""scikit-learn's private helpers that bpcore borrows are still where and what it expects.

If a scikit-learn release moves or changes one of them, these tests fail with a
message naming the symbol and the supported scikit-learn range: update
``bpcore/_sklearn_compat.py`` (and the pin in pyproject.toml) together.
"""
import importlib
import importlib.metadata
import inspect
import sys

import pytest
import sklearn
from packaging.requirements import Requirement
from packaging.version import Version

from bpcore import _sklearn_compat as compat


def _fail_message(what):
    return (
        f"{what} (installed scikit-learn {sklearn.__version__}; bpcore supports "
        f"scikit-learn{compat.SUPPORTED_SKLEARN}): update bpcore/_sklearn_compat.py"
    )


@pytest.mark.parametrize(
    "path, name",
    compat.PRIVATE_IMPORTS + compat.TEST_PRIVATE_IMPORTS,
    ids=lambda x: x,
)
def test_private_name_exists(path, name):
    missing = compat.missing_names(((path, name),))
    assert not missing, _fail_message(f"scikit-learn no longer has {path}.{name}")


# The arguments bpcore passes to each helper: a changed signature is a move too.
SIGNATURES = {
    "_fit_context": ["prefer_skip_nested_validation"],
    "_get_additional_lbfgs_options_dict": ["key", "value"],
    "_check_optimize_result": ["solver", "result", "max_iter"],
    "_check_partial_fit_first_call": ["clf", "classes"],
    "_check_sample_weight": ["sample_weight", "X"],
    "validate_data": ["_estimator", "X", "y", "reset"],
    "available_if": ["check"],
}


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_private_signature(name):
    params = inspect.signature(getattr(compat, name)).parameters
    lost = [p for p in SIGNATURES[name] if p not in params]
    assert not lost, _fail_message(
        f"scikit-learn's {name} lost the parameter(s) {lost}; it now takes {list(params)}"
    )


def test_parameter_constraints_are_sklearn_tables():
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    assert compat.MLPCLASSIFIER_PARAMETER_CONSTRAINTS == MLPClassifier._parameter_constraints
    assert compat.MLPREGRESSOR_PARAMETER_CONSTRAINTS == MLPRegressor._parameter_constraints
    # Copies: bpcore's estimators may extend theirs without touching scikit-learn's.
    assert compat.MLPCLASSIFIER_PARAMETER_CONSTRAINTS is not MLPClassifier._parameter_constraints
    assert "hidden_layer_sizes" in compat.MLPCLASSIFIER_PARAMETER_CONSTRAINTS


def test_supported_range_matches_package_metadata():
    requires = importlib.metadata.requires("bpcore") or []
    pins = [Requirement(r) for r in requires if Requirement(r).name == "scikit-learn"]
    assert len(pins) == 1, requires
    declared = pins[0].specifier
    assert declared == Requirement("scikit-learn" + compat.SUPPORTED_SKLEARN).specifier, (
        f"pyproject.toml pins scikit-learn{declared} but _sklearn_compat.SUPPORTED_SKLEARN "
        f"is {compat.SUPPORTED_SKLEARN}: keep them equal"
    )


def test_installed_sklearn_is_supported():
    spec = Requirement("scikit-learn" + compat.SUPPORTED_SKLEARN).specifier
    assert Version(sklearn.__version__) in spec, _fail_message(
        "the installed scikit-learn is outside the supported range"
    )


def test_import_error_names_symbol_and_range(monkeypatch):
    """Simulate a scikit-learn that moved ``_check_sample_weight``: importing the
    compat module fails with a message naming it, the range and the fix."""
    import sklearn.utils.validation as skv

    monkeypatch.delattr(skv, "_check_sample_weight")
    monkeypatch.delitem(sys.modules, "bpcore._sklearn_compat")
    with pytest.raises(ImportError) as info:
        importlib.import_module("bpcore._sklearn_compat")
    message = str(info.value)
    assert "sklearn.utils.validation._check_sample_weight" in message
    assert f"scikit-learn{compat.SUPPORTED_SKLEARN}" in message
    assert sklearn.__version__ in message
    # Only the moved name is blamed.
    assert "_fit_context" not in message
