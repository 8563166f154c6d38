"""Forged bpcore files: a valid checksum over hostile content (issue 27).

``docs/saving.md`` says what a hostile author can do: edit the JSON content
of a saved file and recompute its SHA-256. Such a file must be refused at
load with a ``ValueError`` saying what is wrong, or load to a model that
works; never crash the process, never load state that breaks later.

Two parts:

* the audit's cases, one by one, with the message each gets (the first one
  segfaulted before the fix, so it runs in a subprocess);
* a hypothesis generator of forged files over five saved models (drop-in
  and toolbox estimators, a bare ``Network``): out-of-range values anywhere
  in the content (RandomState positions, step counts, counts, sizes of 10**9
  and 2**63), inconsistent shapes and counts (tensors swapped for others of
  another shape or dtype), attribute names shadowing the class's methods and
  properties, deleted and added entries. Every example runs in a long-lived
  worker subprocess (restarted if it dies: a crash is a failure, not a lost
  run) that loads the file and, if it loads, uses it: predicts, trains one
  more step (``partial_fit``, or ``train`` for a network) and saves it again
  and reloads it, which must give an equal object. Loading may raise only
  ``ValueError``; using a loaded model may raise only the divergence error of
  a model whose forged weights are non-finite or huge, and an unfitted
  estimator's fit may refuse its parameters (scikit-learn's contract: the
  constructor stores them and fit validates them; the format round-trips
  them; a fitted estimator's are validated at load).

Example counts: ``BPCORE_HYPOTHESIS_PROFILE=nightly`` runs 20,000 random
examples; the default (CI) profile runs 400, derandomized (~15 s);
``BPCORE_FORGED_EXAMPLES=n`` sets the count.
"""
import copy
import json
import os
import struct
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the test extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import bpcore  # noqa: E402
from bpcore import persistence  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

NIGHTLY = os.environ.get("BPCORE_HYPOTHESIS_PROFILE", "bpcore") == "nightly"
EXAMPLES = int(os.environ.get("BPCORE_FORGED_EXAMPLES", 20_000 if NIGHTLY else 400))
FORGED = settings(
    max_examples=EXAMPLES, derandomize=not NIGHTLY, database=None,
    deadline=None, print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture])


# -- the saved models ---------------------------------------------------------

def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    labels = np.array(["ant", "bee", "cat"])[rng.integers(0, 3, 40)]
    return X, labels, (X[:, 0] > 0).astype(int), X[:, :2] @ np.ones((2, 2))


def _models():
    X, labels, binary, Y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "clf_rs": bpcore.MLPClassifier(
                (4,), max_iter=3, random_state=np.random.RandomState(0)).fit(X, labels),
            "clf_sgd_es": bpcore.MLPClassifier(
                (4,), solver="sgd", early_stopping=True, max_iter=4,
                random_state=0).fit(X, binary),
            "nn_reg": bpcore.NeuralNetRegressor(
                hidden_layer_sizes=(5,), solver="nadam", batch_norm=True, max_iter=3,
                random_state=0).fit(X, Y),
            "nn_clf": bpcore.NeuralNetClassifier(
                hidden_layer_sizes=(4,), solver="rprop", dropout=0.2, max_iter=3,
                random_state=0).fit(X, labels),
            "net": bpcore.Network([3, 4, 2], batch_norm=True, random_state=0),
        }


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """{kind: (bytes of the saved file, (tensors, content))} and the data file."""
    out = tmp_path_factory.mktemp("forged")
    files = {}
    for kind, model in _models().items():
        path = out / f"{kind}.bpcore"
        bpcore.save(model, path)
        data = path.read_bytes()
        tensors, metadata = persistence._read(data)
        files[kind] = (data, tensors, json.loads(metadata["content"]))
    X, labels, binary, Y = _data()
    np.savez(out / "data.npz", X=X, labels=labels, binary=binary, Y=Y)
    return files, out / "data.npz"


def forge(tensors, content):
    """A bpcore file of these tensors and content, with a valid checksum."""
    import safetensors.numpy as stn
    text = json.dumps(content)
    metadata = {"format": persistence.FORMAT, "format_version": str(persistence.FORMAT_VERSION),
                "content": text, "sha256": persistence._digest(text, tensors)}
    return stn.save(tensors, metadata=metadata)


# -- the worker: load and use, in a subprocess ------------------------------------

_WORKER = textwrap.dedent("""
    import struct, sys, tempfile, os, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    import bpcore
    from bpcore import persistence, SGD, train
    from sklearn.exceptions import NotFittedError
    from sklearn.utils._param_validation import InvalidParameterError

    d = np.load(sys.argv[1])
    X = d["X"]
    TARGETS = {"clf_rs": d["labels"], "clf_sgd_es": d["binary"], "nn_reg": d["Y"],
               "nn_clf": d["labels"], "net": d["Y"]}
    NONFINITE = ("Solver produced non-finite parameter weights", "Training diverged")
    tmp = os.path.join(tempfile.mkdtemp(), "again.bpcore")

    def use(kind, obj):
        y = TARGETS[kind]
        if kind == "net":
            if not isinstance(obj, bpcore.Network):
                return "a network file loaded as " + type(obj).__name__
            obj.forward(X)
            try:
                train(obj, X, y, optimizer=SGD(1e-3), epochs=1, batch_size=8, random_state=0)
            except ValueError as exc:
                if not str(exc).startswith(NONFINITE):
                    raise
        else:
            fitted = "_net" in obj.__dict__
            if fitted:
                obj.predict(X)
                if hasattr(obj, "predict_proba"):
                    obj.predict_proba(X)
            else:
                try:
                    obj.predict(X)
                except NotFittedError:
                    pass
                else:
                    return "an estimator without a network predicts"
                try:
                    big = sum(np.ravel(obj.hidden_layer_sizes)) > 10_000
                except (TypeError, ValueError):
                    big = False     # not numbers: the fit below refuses them
                if big:
                    return ""  # a legitimate parameter; fitting it would take minutes
            try:
                if not fitted or obj.early_stopping or obj.solver == "lbfgs":
                    obj.set_params(warm_start=True, max_iter=1).fit(X, y)
                else:
                    obj.partial_fit(X, y)
            except InvalidParameterError:
                # An unfitted estimator keeps its parameters unvalidated, as
                # scikit-learn's constructor does (the format round-trips
                # them, tests/test_persistence.py); its fit validates them.
                # A fitted one's are checked at load.
                if fitted:
                    raise
                return ""
            except (TypeError, ValueError) as exc:
                if not fitted and str(exc).startswith(("hidden_layer_sizes must be > 0",
                                                       "hidden_layer_sizes must be integers")):
                    return ""       # (the same: a parameter fit validates)
                if isinstance(exc, TypeError):
                    raise
                if not str(exc).startswith(NONFINITE):
                    raise
            obj.predict(X)
        bpcore.save(obj, tmp)
        again = persistence.loads(open(tmp, "rb").read())
        if type(again) is not type(obj):
            return "saved again, it loads as another type"
        return ""

    # The answers go to the original stdout; whatever the model prints
    # (verbose=1 is a valid parameter, L-BFGS prints from C) goes nowhere.
    inp, out = sys.stdin.buffer, os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    sys.stdout = open(os.devnull, "w")
    while True:
        head = inp.read(9)
        if len(head) < 9:
            break
        n, k = struct.unpack("<QB", head)
        kind = list(TARGETS)[k]
        data = inp.read(n)
        try:
            obj = persistence.loads(data)
        except ValueError as exc:
            out.write("R " + str(exc).replace("\\n", " ")[:300] + "\\n")
        except BaseException as exc:
            out.write(f"E load raised {type(exc).__name__}: {exc}"[:400].replace("\\n", " ")
                      + "\\n")
        else:
            try:
                problem = use(kind, obj)
            except BaseException as exc:
                problem = f"use raised {type(exc).__name__}: {exc}"
            out.write(("U " + problem if problem else "L ")[:400].replace("\\n", " ") + "\\n")
        out.flush()
""")


class Worker:
    """One subprocess loading forged files in turn; restarted after a crash."""

    KINDS = ("clf_rs", "clf_sgd_es", "nn_reg", "nn_clf", "net")

    def __init__(self, data_file, script):
        self.args = [sys.executable, str(script), str(data_file)]
        self.proc = None

    def check(self, kind, data):
        """(letter, detail): R refused, L loaded and used, U loaded and failed
        in use, E another exception at load, C the process died."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            self.proc.stdin.write(struct.pack("<QB", len(data), self.KINDS.index(kind)) + data)
            self.proc.stdin.flush()
            line = self.proc.stdout.readline().decode()
        except BrokenPipeError:
            line = ""
        if not line:
            code = self.proc.wait(timeout=60)
            self.proc = None
            return "C", f"the worker died (exit code {code})"
        return line[0], line[2:].strip()

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def worker(saved, tmp_path_factory):
    script = tmp_path_factory.mktemp("worker") / "worker.py"
    script.write_text(_WORKER)
    w = Worker(saved[1], script)
    yield w
    w.close()


# -- the audit's cases ----------------------------------------------------------------

def _find(node, key):
    """The first dict in ``node`` (depth first) that has ``key``."""
    if isinstance(node, dict):
        if key in node:
            return node
        node = list(node.values())
    if isinstance(node, list):
        for x in node:
            found = _find(x, key)
            if found is not None:
                return found
    return None


def _set(key, value, under=None):
    """Set the first ``key`` found (under ``content["object"][under]`` if given)."""
    def edit(content, tensors):
        root = content if under is None else content["object"][under]
        _find(root, key)[key] = value
    return edit


def _attr(key, value):
    def edit(content, tensors):
        content["object"]["attributes"][key] = value
    return edit


def _classes(n):
    """classes_ (and the label binarizer's) of n str labels."""
    def edit(content, tensors):
        attrs = content["object"]["attributes"]
        for name in (attrs["classes_"]["array"], _find(attrs["_label_binarizer"],
                                                       "array")["array"]):
            width = tensors[name].shape[1]
            tensors[name] = np.array([[ord(c)] * width for c in "abcdefg"[:n]], np.uint32)
    return edit


def _tensor(key, make):
    def edit(content, tensors):
        name = _find(content, key)[key]["array"]
        tensors[name] = make(tensors[name])
    return edit


CASES = [
    # The audit's reproducer: the random_state parameter's position (the
    # fit draws from it; the fitted _random_state is the same object).
    ("clf_rs", _set("pos", 2147483647, under="params"),
     r"RandomState position must be in \[0, 624\], got 2147483647"),
    ("clf_rs", _set("pos", -1), r"RandomState position must be in \[0, 624\]"),
    ("clf_rs", _set("has_gauss", 7), "has_gauss must be 0 or 1, got 7"),
    ("clf_rs", _set("cached_gaussian", {"float": "nan"}), "cached Gaussian must be a finite"),
    ("clf_rs", _tensor("keys", lambda k: k[:600]), "RandomState needs 624 uint32 keys"),
    ("clf_rs", _classes(7), r"7 classes \(multiclass\) do not fit a network of 3 outputs"),
    ("clf_rs", _attr("predict", "x"), "the attribute 'predict' would shadow "
                                      "MLPClassifier.predict"),
    ("clf_rs", _attr("_validate_params", "x"), "'_validate_params' would shadow"),
    ("nn_reg", _attr("predict_proba", 1), "the attribute 'predict_proba' would pose as the "
                                          "method .*predict_proba on a NeuralNetRegressor"),
    ("clf_rs", _attr("predict_proba", "x"), "'predict_proba' would shadow"),
    ("nn_clf", _attr("score", 1.0),
     "the attribute .score. would shadow NeuralNetClassifier.score"),
    ("clf_rs", _set("t", -5), "step count must be >= 0, got -5"),
    ("clf_rs", _set("mu_product", "nan"), r"momentum product must be a number in \[0, 1\]"),
    ("nn_reg", _set("mu_product", {"float": "nan"}), r"momentum product must be a number"),
    ("nn_reg", _set("mu_product", 7.5), r"momentum product must be a number in \[0, 1\]"),
    ("clf_rs", _tensor("state", lambda s: s[:, :-1].copy()),
     r"optimizer's state is for \d+ float64 parameters, the network has"),
    ("clf_rs", _tensor("state", lambda s: np.full_like(s, np.inf)), "state holds non-finite"),
    ("nn_reg", lambda c, t: c["object"]["attributes"]["_schedule"]["schedule"][2]["dict"]
     .__setitem__(3, ["lr", -5]), "the schedule state's 'lr' must be a finite number >= 0"),
    ("clf_rs", lambda c, t: c["object"]["params"].__setitem__("hidden_layer_sizes",
                                                             {"tuple": [0, 1]}),
     "hidden_layer_sizes must be integers > 0"),
    ("clf_rs", _attr("n_outputs_", 2), "n_outputs_ is 2 but the network's is 3"),
    ("clf_rs", _attr("n_features_in_", 9), "n_features_in_ is 9 but the network's is 3"),
    ("clf_rs", _attr("n_iter_", -3), "n_iter_ must be an integer >= 0"),
    ("clf_rs", _attr("t_", 2.5), "t_ must be an integer >= 0"),
    ("clf_rs", _attr("out_activation_", "logistic"), "out_activation_ is 'logistic'"),
    ("clf_rs", _tensor("_best_params", lambda p: p[:-2].copy()), "_best_params must be an array"),
    ("clf_rs", _attr("loss_curve_", "abc"), "loss_curve_ must be a list of numbers"),
    ("clf_rs", _attr("_random_state", 3), "_random_state must be a RandomState"),
    ("nn_clf", _attr("history_", [1, 2]), "history_ must be a History"),
    ("clf_sgd_es", _attr("coefs_", [1, 2]), "coefs_ must be float arrays of the shapes"),
    ("clf_sgd_es", lambda c, t: c["object"]["attributes"].pop("_net"),
     "coefs_ refers to the network's arrays, but the file holds no network"),
    ("clf_sgd_es", lambda c, t: [c["object"]["attributes"].pop(k)
                                 for k in ("_net", "coefs_", "intercepts_")],
     "fitted attributes .* but no network"),
    ("clf_sgd_es", lambda c, t: c["object"]["attributes"].pop("n_outputs_"),
     r"needs the attributes \['n_outputs_'\]"),
    # Found by the nightly profile (20,000 files): the attributes replaced by
    # one 'x_' loaded as an unfitted estimator that check_is_fitted took for
    # a fitted one; its predict raised AttributeError (no coefs_).
    ("clf_rs", lambda c, t: [c["object"]["attributes"].clear(),
                             c["object"]["attributes"].__setitem__(
                                 "x_", {"array": sorted(t)[0]})],
     r"fitted attributes \['x_'\] but no network"),
    # scikit-learn 1.6 stage of CI: a scoring name the fit cannot resolve.
    ("nn_clf", lambda c, t: c["object"]["params"].__setitem__("scoring", ""),
     "'' is not a valid scoring value"),
    ("nn_clf", lambda c, t: c["object"]["params"].__setitem__("scoring", "predict"),
     "'predict' is not a valid scoring value"),
    ("nn_reg", lambda c, t: [c["object"]["attributes"].clear(),
                             c["object"]["attributes"].__setitem__("anything_", 1)],
     r"fitted attributes \['anything_'\] but no network"),
]


@pytest.mark.parametrize("kind, edit, message", CASES,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(CASES)])
def test_forged_file_is_refused_at_load(saved, worker, kind, edit, message):
    data, tensors, content = saved[0][kind]
    tensors, content = dict(tensors), copy.deepcopy(content)
    edit(content, tensors)
    forged = forge(tensors, content)
    # In a subprocess first: the first case segfaulted on the first draw.
    letter, detail = worker.check(kind, forged)
    assert letter == "R", (letter, detail)
    with pytest.raises(ValueError, match="invalid bpcore file: .*" + message):
        persistence.loads(forged)


def test_the_unforged_files_load_and_work(saved, worker):
    for kind, (data, tensors, content) in saved[0].items():
        assert worker.check(kind, forge(tensors, content)) == ("L", "")


# -- the generator --------------------------------------------------------------------

def _paths(node, prefix=()):
    """Every path (tuple of keys and indices) into the JSON ``node``."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


#: Places where a wrong value did harm once (or could); drawn half the time.
SENSITIVE = {"pos", "has_gauss", "cached_gaussian", "keys", "t", "mu_product", "state", "lr",
             "n_outputs_", "n_features_in_", "n_layers_", "classes_", "out_activation_",
             "coefs_", "intercepts_", "_best_params", "_best_buffers", "config", "params",
             "buffers", "unicode", "n_iter_", "t_", "y_type_", "dict", "tuple", "array"}
# (Drawn values are copied before they go into a file: a later edit of the
# same file may change them, and the next example must see them unchanged.)
HUGE = [2**31 - 1, 2**31, 2**32, 2**63 - 1, -2**63, 10**9, 10**30]
VALUES = st.one_of(
    st.sampled_from([-5, -1, 0, 1, 2, 3, 7, 623, 624, 625, *HUGE, 0.5, -0.0, 1e308, -1e308,
                     1e-320, {"float": "nan"}, {"float": "inf"}, {"float": "-inf"}, True,
                     False, None, "", "nan", "predict", "softmax", "binary", "multiclass",
                     "continuous", "x" * 5000, [], [1, 2, 3], [10**9] * 3, {"tuple": [1]},
                     {"dict": []}, {"dtype": "float32"}, {"dtype": "int64"},
                     {"array": "t0", "unicode": 10**9}, {"array": "t0", "scalar": True}]),
    st.integers(), st.floats(), st.text(max_size=20))
#: Names an attribute may try to shadow, and fitted names it may duplicate.
NAMES = sorted({n for cls in (bpcore.MLPClassifier, bpcore.NeuralNetRegressor)
                for n in dir(cls) if not n.startswith("__")}
               | {"coefs_", "n_outputs_", "classes_", "_net", "_optimizer", "x_"})


def _get(node, path):
    for k in path:
        node = node[k]
    return node


class Forged:
    """A forged file, shown by its edits (hypothesis prints the shrunk example)."""

    def __init__(self, kind, edits, data):
        self.kind, self.edits, self.data = kind, edits, data

    def __repr__(self):
        return f"Forged({self.kind!r}, {'; '.join(self.edits)})"


@st.composite
def forged_files(draw, saved_files):
    kind = draw(st.sampled_from(Worker.KINDS))
    _, tensors, content = saved_files[kind]
    tensors, content = dict(tensors), copy.deepcopy(content)
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(content))[1:]
        if not paths:
            break
        how = draw(st.sampled_from(["value", "value", "tensor", "rename", "add", "delete",
                                    "tensor_ref"]))
        sensitive = [p for p in paths if isinstance(p[-1], str) and p[-1] in SENSITIVE]
        path = draw(st.sampled_from(sensitive if sensitive and draw(st.booleans())
                                    else paths))
        parent, key = _get(content, path[:-1]), path[-1]
        edits.append(f"{how} at {'/'.join(map(str, path))}")
        if how == "value":
            parent[key] = copy.deepcopy(draw(VALUES))
            edits[-1] += f" = {str(parent[key])[:40]}"
        elif how == "tensor_ref":
            parent[key] = {"array": draw(st.sampled_from(sorted(tensors)))}
        elif how == "tensor":
            # Another shape or dtype under the same name (inconsistent shapes).
            name = draw(st.sampled_from(sorted(tensors)))
            old = tensors[name]
            shape = draw(st.sampled_from([old.shape, (0,), (1,), (624,), (3,), (2, 31),
                                          old.shape[:-1], old.shape + (1,)]))
            dtype = draw(st.sampled_from([old.dtype, np.float32, np.float64, np.int64,
                                          np.uint32, np.bool_]))
            fill = draw(st.sampled_from([0, 1, 10**6, np.nan, np.inf, -1]))
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tensors[name] = np.full(shape, fill).astype(dtype)
            edits[-1] = f"tensor {name} = full({shape}, {fill}, {np.dtype(dtype)})"
        elif how in ("rename", "add") and isinstance(parent, dict):
            new = draw(st.sampled_from(NAMES))
            if how == "rename":
                parent[new] = parent.pop(key)
            else:
                parent[new] = copy.deepcopy(draw(VALUES))
            edits[-1] += f" -> {new}"
        elif how == "delete" and isinstance(parent, dict):
            del parent[key]
        elif how == "delete" and isinstance(parent, list) and parent:
            del parent[key]
    return Forged(kind, edits, forge(tensors, content))


OUTCOMES = {}


def test_forged_files_load_and_work_or_are_refused(saved, worker, capsys):
    files = saved[0]

    @FORGED
    @given(forged_files(files))
    def check(case):
        letter, detail = worker.check(case.kind, case.data)
        OUTCOMES[letter] = OUTCOMES.get(letter, 0) + 1
        assert letter in ("R", "L"), f"{letter}: {detail}"

    OUTCOMES.clear()
    try:
        check()
    finally:
        n = sum(OUTCOMES.values())
        with capsys.disabled():
            print(f"\nforged-file fuzz ({'nightly' if NIGHTLY else 'CI'} profile): {n} files "
                  f"(hypothesis' shrinking included): {OUTCOMES.get('R', 0)} refused with "
                  f"ValueError, {OUTCOMES.get('L', 0)} loaded and worked, "
                  f"{OUTCOMES.get('U', 0)} loaded and failed in use, "
                  f"{OUTCOMES.get('E', 0)} other errors at load, {OUTCOMES.get('C', 0)} crashes")
    assert n > 0
