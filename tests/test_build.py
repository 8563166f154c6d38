"""The build switches compute the same numbers, and a swallowed exception fails.

Issue #13, defect 5: ``BPCORE_DEBUG=1`` turned ``cdivision`` off, so a
division by zero inside a ``noexcept nogil`` kernel raised an exception that
Cython printed and swallowed, and the kernel returned 0. These tests pass in
both builds (run the suite after ``BPCORE_DEBUG=1 pip install
--no-build-isolation -e .`` to check the debug one).
"""
import os
import subprocess
import sys
import textwrap

import numpy as np

from bpcore import Network

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_poisson_overflow_is_not_swallowed():
    """z = -1000: the predicted mean exp(z) underflows to 0 and the kernel
    divides by it. Release build (C division): a huge loss (inf) and the exact
    gradient exp(z) - y = -1; the old debug build returned (0.0, [0, 0])."""
    net = Network([1, 1], output="exp", loss="poisson")
    net.params[:] = [-1000.0, 0.0]
    loss, grad = net.loss_and_grad(np.array([[1.0]]), np.array([[1.0]]))
    assert loss >= 999.0           # y log(y / exp(z)) - y + exp(z) = 999; inf in floating point
    np.testing.assert_array_equal(grad, [-1.0, -1.0])


def test_unraisable_exception_fails_the_suite(tmp_path):
    """pyproject's filterwarnings turn an exception that could only be printed
    (a noexcept kernel's, a __del__'s) into a test failure."""
    (tmp_path / "test_unraisable.py").write_text(textwrap.dedent("""
        import gc

        class Bad:
            def __del__(self):
                raise ZeroDivisionError("float division")

        def test_swallowed():
            Bad()
            gc.collect()
    """))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-c", os.path.join(ROOT, "pyproject.toml"), "--rootdir", str(tmp_path),
         str(tmp_path / "test_unraisable.py")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "ZeroDivisionError" in proc.stdout, proc.stdout[-2000:]
