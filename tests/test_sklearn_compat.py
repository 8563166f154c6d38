"""scikit-learn's private helpers that bpcore borrows are still where and what it expects.

If a scikit-learn release moves or changes one of them, these tests fail with a
message naming the symbol and the supported scikit-learn range: update
``bpcore/_sklearn_compat.py`` (and the range in pyproject.toml) together.
Names that the installed release predates (``ADDED_IN``: the callback protocol
before 1.9) skip with the reason; what bpcore does instead is tested here too.
"""
import importlib
import importlib.metadata
import inspect
import pathlib
import sys
import warnings

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
    if not compat.expected_here(path, name):
        since = ".".join(map(str, compat.ADDED_IN[(path, name)]))
        pytest.skip(f"{path}.{name} is new in scikit-learn {since}; "
                    f"the installed {sklearn.__version__} predates it")
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
    if name == "_get_additional_lbfgs_options_dict" and compat.SKLEARN_VERSION < (1, 7):
        # bpcore's stand-in for 1.6 takes the same arguments.
        assert compat._get_additional_lbfgs_options_dict("iprint", -1) == {"iprint": -1}
    params = inspect.signature(getattr(compat, name)).parameters
    lost = [p for p in SIGNATURES[name] if p not in params]
    assert not lost, _fail_message(
        f"scikit-learn's {name} lost the parameter(s) {lost}; it now takes {list(params)}"
    )


def test_parameter_constraints_are_sklearn_tables():
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    assert compat.MLPCLASSIFIER_PARAMETER_CONSTRAINTS == MLPClassifier._parameter_constraints
    regressor = dict(compat.MLPREGRESSOR_PARAMETER_CONSTRAINTS)
    if not compat.HAS_MLP_LOSS_AND_SAMPLE_WEIGHT:
        # scikit-learn 1.6 has no `loss`: bpcore adds 1.7's constraint for it.
        assert "loss" not in MLPRegressor._parameter_constraints
        (loss,) = regressor.pop("loss")
        assert loss.options == {"squared_error", "poisson"}
    assert regressor == MLPRegressor._parameter_constraints
    # Copies: bpcore's estimators may extend theirs without touching scikit-learn's.
    assert compat.MLPCLASSIFIER_PARAMETER_CONSTRAINTS is not MLPClassifier._parameter_constraints
    assert "hidden_layer_sizes" in compat.MLPCLASSIFIER_PARAMETER_CONSTRAINTS


def _declared_requirements():
    """bpcore's declared dependencies: the installed metadata, or pyproject.toml
    of the source tree that the tests run from."""
    try:
        return importlib.metadata.requires("bpcore") or []
    except importlib.metadata.PackageNotFoundError:
        tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs 3.11")
        pyproject = pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml"
        if not pyproject.exists():
            pytest.skip("bpcore is neither installed nor run from its source tree")
        with open(pyproject, "rb") as f:
            return tomllib.load(f)["project"]["dependencies"]


def test_supported_range_matches_package_metadata():
    requires = _declared_requirements()
    pins = [Requirement(r) for r in requires if Requirement(r).name == "scikit-learn"]
    assert len(pins) == 1, requires
    declared = pins[0].specifier
    assert declared == Requirement("scikit-learn" + compat.SUPPORTED_SKLEARN).specifier, (
        f"pyproject.toml pins scikit-learn{declared} but _sklearn_compat.SUPPORTED_SKLEARN "
        f"is {compat.SUPPORTED_SKLEARN}: keep them equal"
    )
    # No upper pin: bpcore never forces a user's scikit-learn down (the
    # untested-release warning below stands in for it).
    assert all(s.operator in (">=", ">") for s in declared), declared
    # The lower bound is the oldest tested release.
    major, minor = compat.TESTED_SKLEARN[0]
    assert f"{major}.{minor}.0" in declared and f"{major}.{minor - 1}.99" not in declared


def test_installed_sklearn_is_supported():
    spec = Requirement("scikit-learn" + compat.SUPPORTED_SKLEARN).specifier
    assert Version(sklearn.__version__) in spec, _fail_message(
        "the installed scikit-learn is outside the supported range"
    )


def test_installed_sklearn_is_tested():
    """CI runs the suite on every release from the oldest to the newest tested."""
    oldest, newest = compat.TESTED_SKLEARN
    assert oldest <= compat.SKLEARN_VERSION <= newest, _fail_message(
        "the installed scikit-learn is newer than every tested release (it works, "
        "with a warning): test it and raise TESTED_SKLEARN"
    )


@pytest.mark.parametrize("version, warns", [
    ("1.6.1", False), ("1.9.1", False), ("1.9.dev0", False),
    ("1.10.0", True), ("1.10.0rc1", True), ("2.0.0", True),
])
def test_untested_release_message(version, warns):
    message = compat.untested_message(version)
    assert (message is not None) == warns
    if warns:
        assert f"installed {version}" in message
        assert "scikit-learn 1.6 to 1.9" in message
        assert "'scikit-learn<1.10'" in message


@pytest.mark.skipif(compat.SKLEARN_VERSION != compat.TESTED_SKLEARN[1],
                    reason="simulates the release after the newest tested one, "
                    "with that one's helpers")
def test_untested_release_warns_once_on_import(monkeypatch):
    """A scikit-learn newer than the tested ones: importing bpcore's compat
    module warns once, and the estimators stay usable."""
    major, minor = compat.TESTED_SKLEARN[1]
    monkeypatch.setattr(sklearn, "__version__", f"{major}.{minor + 1}.0")
    monkeypatch.delitem(sys.modules, "bpcore._sklearn_compat")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh = importlib.import_module("bpcore._sklearn_compat")
        importlib.import_module("bpcore._sklearn_compat")  # cached: no second warning
    assert [type(w.message) for w in caught] == [fresh.UntestedSklearnWarning]
    assert f"not with the installed {major}.{minor + 1}.0" in str(caught[0].message)


def test_callbacks_before_1_9_are_refused_clearly():
    import bpcore

    est = bpcore.MLPClassifier()
    if compat.HAS_CALLBACKS:
        assert hasattr(est, "set_callbacks")
        return
    assert not hasattr(est, "set_callbacks")
    with pytest.raises(AttributeError, match="has no attribute 'set_callbacks'") as info:
        est.set_callbacks()
    cause = str(info.value.__cause__)
    assert "new in scikit-learn 1.9" in cause and sklearn.__version__ in cause
    # Fitting needs no callback machinery.
    from sklearn.exceptions import ConvergenceWarning

    with pytest.warns(ConvergenceWarning):
        est.set_params(max_iter=2).fit([[0.0], [1.0], [2.0], [3.0]], [0, 1, 0, 1])
    assert est.n_iter_ == 2


def test_signatures_follow_the_installed_release():
    """1.7 made ``loss`` MLPRegressor's first parameter and put ``sample_weight``
    before ``classes`` in ``partial_fit``; on 1.6 bpcore binds positional
    arguments as 1.6 does and keeps the newer parameters as keywords."""
    import bpcore
    from sklearn import neural_network as sk

    args = ("poisson", (7,)) if compat.HAS_MLP_LOSS_AND_SAMPLE_WEIGHT else ((7,), "tanh")
    ours = bpcore.MLPRegressor(*args).get_params()
    theirs = sk.MLPRegressor(*args).get_params()
    assert {k: ours[k] for k in theirs} == theirs
    assert bpcore.MLPRegressor(loss="poisson").loss == "poisson"  # a keyword on every release
    ours = inspect.signature(bpcore.MLPClassifier.partial_fit).parameters
    theirs = inspect.signature(sk.MLPClassifier.partial_fit).parameters
    positional = [n for n, p in ours.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == [n for n, p in theirs.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert "sample_weight" in ours


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
