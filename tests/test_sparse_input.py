"""Malformed and mutated sparse input (issue #13, defects 2 and 3).

A corrupt CSR/CSC/COO matrix crashed the process inside SciPy's conversions
before bpcore's checks ran, and the kernels read the caller's ``indices``
after validation, so changing them later read out of bounds. Every case runs
in a forked child of one subprocess (a segfault fails that case, it does
not kill the suite); each prints ``name|exception type|message`` or
``name|ok``.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

from bpcore import Network
from bpcore._validation import csr_input

PRELUDE = textwrap.dedent("""
    import json, sys
    import numpy as np, scipy.sparse as sp
    from bpcore import MLPClassifier, MLPRegressor, Network, SGD, train
    from bpcore._validation import csr_input
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 4)) * (rng.uniform(size=(10, 4)) < 0.6)
    X[:, 0] += 1.0                                  # no empty row
    Y = rng.standard_normal((10, 3))
    y = np.arange(10) % 2
    net = Network([4, 5, 3], random_state=0)

    def int64(A):
        A.indices = A.indices.astype(np.int64)
        A.indptr = A.indptr.astype(np.int64)
        return A
""")

MALFORMED = "malformed {fmt} sparse matrix: "

# name: (code that raises, fragment of the ValueError's message)
BAD = {
    "csr-indptr-forward": ("A = sp.csr_matrix(X); A.indptr[3] = 10**6; net.forward(A)",
                           MALFORMED.format(fmt="CSR") + "indptr must be non-decreasing, but "
                           "indptr[3] = 1000000 > indptr[4]"),
    "csc-indptr-forward": ("A = sp.csc_matrix(X); A.indptr[3] = 10**6; net.forward(A)",
                           MALFORMED.format(fmt="CSC") + "indptr must be non-decreasing"),
    "csr-indptr-loss_and_grad": (
        "A = sp.csr_matrix(X); A.indptr[3] = 10**6; net.loss_and_grad(A, Y)",
        "indptr must be non-decreasing"),
    "csc-indptr-train": (
        "A = sp.csc_matrix(X); A.indptr[3] = 10**6; train(net, A, Y, optimizer=SGD())",
        "indptr must be non-decreasing"),
    "csr-indptr-classifier-fit": (
        "A = sp.csr_matrix(X); A.indptr[3] = 10**6; MLPClassifier(max_iter=2).fit(A, y)",
        "indptr must be non-decreasing"),
    "csc-indptr-regressor-fit": (
        "A = sp.csc_matrix(X); A.indptr[3] = 10**6; MLPRegressor(max_iter=2).fit(A, Y)",
        "indptr must be non-decreasing"),
    "csr-indptr-classifier-predict": (
        "import warnings; warnings.simplefilter('ignore'); "
        "m = MLPClassifier(max_iter=2).fit(X, y); "
        "A = sp.csr_matrix(X); A.indptr[3] = 10**6; m.predict(A)",
        "indptr must be non-decreasing"),
    "csr-indptr-classifier-partial_fit": (
        "A = sp.csr_matrix(X); A.indptr[3] = 10**6; "
        "MLPClassifier().partial_fit(A, y, classes=[0, 1])",
        "indptr must be non-decreasing"),
    "csr-index-too-large": ("A = int64(sp.csr_matrix(X)); A.indices[5] = 10**8; net.forward(A)",
                            "column index 100000000 at position 5 is out of range [0, 4)"),
    "csr-index-negative": ("A = sp.csr_matrix(X); A.indices[5] = -1; net.forward(A)",
                           "column index -1 at position 5 is out of range [0, 4)"),
    "csc-index-too-large": ("A = sp.csc_matrix(X); A.indices[2] = 10; net.forward(A)",
                            MALFORMED.format(fmt="CSC") + "row index 10 at position 2 "
                            "is out of range [0, 10)"),
    "csr-indptr-short": ("A = sp.csr_matrix(X); A.indptr = A.indptr[:-1]; net.forward(A)",
                         "indptr has 10 entries, expected 11 (one per row, plus one)"),
    "csr-indptr-start": ("A = sp.csr_matrix(X); A.indptr[0] = 1; net.forward(A)",
                         "indptr[0] is 1, expected 0"),
    "csr-indptr-end": ("A = sp.csr_matrix(X); A.indptr[-1] = 10**6; net.forward(A)",
                       "indptr[-1] = 1000000 exceeds the"),
    "csr-data-short": ("A = sp.csr_matrix(X); A.data = A.data[:-1]; net.forward(A)",
                       "entries but data has"),
    "csr-float-indices": ("A = sp.csr_matrix(X); A.indices = A.indices.astype(float); "
                          "net.forward(A)", "indices must be integers, got dtype float64"),
    "coo-row": ("A = sp.coo_matrix(X); A.row[3] = 10**6; net.forward(A)",
                MALFORMED.format(fmt="COO") + "row index 1000000 at position 3"),
    "coo-col": ("A = sp.coo_array(X); A.col[0] = -5; net.forward(A)",
                "column index -5 at position 0 is out of range [0, 4)"),
    "bsr-index": ("A = sp.bsr_matrix(X, blocksize=(2, 2)); A.indices[0] = 10**6; "
                  "net.forward(A)", MALFORMED.format(fmt="BSR")),
}

# name: code that must run and print nothing (asserts inside)
GOOD = {
    # The reproducer: int64 indices were handed to the kernel as is.
    "mutated-indices-after-csr_input": """
        A = int64(sp.csr_matrix(X)); c = csr_input(A, np.float64); ref = net.forward(c)
        A.indices[5] = 10**8
        assert (net.forward(c) == ref).all()
        A.indices[5] = (int(c.indices[5]) + 1) % 4          # in range, but wrong
        A.indptr[3] = 10**6
        A.data[:] = np.nan
        assert (net.forward(c) == ref).all()
    """,
    "no-shared-memory": """
        for make in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array):
            for cast in (lambda A: A, int64):
                A = make(X)
                if A.format != "coo":
                    A = cast(A)
                c = csr_input(A, np.float64)
                mine = (c.data, c.indices, c.indptr)
                theirs = [getattr(A, n) for n in ("data", "indices", "indptr", "row", "col")
                          if hasattr(A, n)]
                assert not any(np.may_share_memory(a, b) for a in mine for b in theirs), make
                assert not any(a.flags.writeable for a in mine), make
                assert (net.forward(c) == net.forward(X)).all() or \\
                    np.allclose(net.forward(c), net.forward(X), rtol=1e-14), make
    """,
    "csr_input-arrays-read-only": """
        c = csr_input(int64(sp.csr_matrix(X)), np.float64)
        try:
            c.indices[5] = 10**8
        except ValueError as exc:
            assert "read-only" in str(exc)
        else:
            raise AssertionError("indices writable")
    """,
    "valid-after-malformed-refused": """
        A = sp.csr_matrix(X); saved = A.indptr[3]; A.indptr[3] = 10**6
        try:
            net.forward(A)
        except ValueError:
            pass
        A.indptr[3] = saved                                 # left untouched: usable again
        assert np.allclose(net.forward(A), net.forward(X), rtol=1e-14)
    """,
}

# Each case runs in a forked child of the runner (bpcore imported once), so a
# crash fails that case alone; the runner itself never runs a kernel.
RUNNER = textwrap.dedent("""
    import os
    bad, good = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    for name, code in [*bad.items(), *good.items()]:
        pid = os.fork()
        if pid == 0:
            try:
                exec(code)
            except Exception as exc:
                line = f"{name}|{type(exc).__name__}|{exc}"
            else:
                line = f"{name}|{'no error' if name in bad else 'ok'}|"
            print(line.replace("\\n", " "), flush=True)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            print(f"{name}|killed by signal {os.WTERMSIG(status)}|", flush=True)
""")


@pytest.fixture(scope="module")
def outcomes():
    """Every case's outcome from one subprocess."""
    bad = {name: code for name, (code, _) in BAD.items()}
    good = {name: textwrap.dedent(code) for name, code in GOOD.items()}
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    proc = subprocess.run([sys.executable, "-c", PRELUDE + RUNNER, json.dumps(bad),
                           json.dumps(good)], capture_output=True, text=True, timeout=300,
                          env=env)
    results = {}
    for line in proc.stdout.splitlines():
        name, kind, message = line.split("|", 2)
        results[name] = (kind, message)
    return results, proc


def _outcome(outcomes, name):
    results, proc = outcomes
    if name not in results:
        pytest.fail(f"the subprocess died before case {name!r} finished (exit "
                    f"{proc.returncode}; a negative exit is a signal, -11 a segfault)\n"
                    f"{proc.stderr[-2000:]}")
    return results[name]


@pytest.mark.parametrize("name", list(BAD))
def test_malformed_sparse_input_is_refused(outcomes, name):
    kind, message = _outcome(outcomes, name)
    assert kind == "ValueError", (kind, message)
    assert BAD[name][1] in message, message
    assert "scipy.sparse's constructors" in message       # says how to fix it


@pytest.mark.parametrize("name", list(GOOD))
def test_kernels_see_private_copies(outcomes, name):
    kind, message = _outcome(outcomes, name)
    assert kind == "ok", (kind, message)


def test_subprocess_exited_cleanly(outcomes):
    results, proc = outcomes
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(results) == len(BAD) + len(GOOD)


# In process: what the private copies cost, and that good input is unchanged.

def test_at_most_one_copy_of_the_data():
    rng = np.random.default_rng(1)
    A = sp.random(50, 7, density=0.3, format="csr", random_state=rng)
    c = csr_input(A, np.float64)
    assert not np.may_share_memory(c.data, A.data)
    # The data was copied once: the private copy is C-contiguous and owns it.
    assert c.data.base is None or c.data.base.base is None
    np.testing.assert_array_equal(c.data, A.data)
    np.testing.assert_array_equal(c.indices, A.indices)
    np.testing.assert_array_equal(c.indptr, A.indptr)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "dok", "dia", "bsr"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_format_agrees_with_dense(fmt, dtype):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 6)) * (rng.uniform(size=(30, 6)) < 0.4)
    net = Network([6, 8, 2], dtype=dtype, random_state=0)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(net.forward(sp.csr_matrix(X).asformat(fmt)),
                               net.forward(X), rtol=tol, atol=tol)
