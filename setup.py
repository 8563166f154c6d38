"""Declares the compiled core, `bpcore._kernels`; metadata lives in pyproject.toml.

Environment switches:

* ``BPCORE_DEBUG=1`` builds with bounds checking, wraparound checks and
  assertions on, without optimization and with debug information (for
  debugging the kernels); release builds are stripped of debug information
  and local symbols (``BPCORE_STRIP=0`` keeps them). Division
  keeps C semantics (``cdivision``) in both builds, so a debug build computes
  the release numbers: with Python semantics a division by zero inside a
  ``noexcept nogil`` kernel raised an exception that Cython could only print
  and swallow, and the kernel returned 0 (Poisson loss 0.0 instead of inf).
* ``BPCORE_OPENMP=0`` builds without OpenMP. By default OpenMP is used when
  the compiler accepts it (probed below); without it the kernels run every
  batch on one thread and produce the same results. ``BPCORE_OPENMP=require``
  fails the build instead of falling back (wheels are built that way, so none
  ships single-threaded by accident).
"""
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("BPCORE_DEBUG", "0") not in ("", "0")
WANT_OPENMP = os.environ.get("BPCORE_OPENMP", "1") not in ("", "0")
REQUIRE_OPENMP = os.environ.get("BPCORE_OPENMP", "") == "require"


def _builds(cmd):
    """True if the command (a compile-and-link of a probe program) succeeds."""
    try:
        return subprocess.run(cmd, capture_output=True).returncode == 0
    except OSError:
        return False


def openmp_flags():
    """(compile_args, link_args) for OpenMP if a test program builds, else empty.

    The probe compiles with the compiler and the CPPFLAGS/CFLAGS/LDFLAGS that
    setuptools will use for the extension. GCC and LLVM clang take
    ``-fopenmp``; Apple's clang refuses it but compiles OpenMP through its
    preprocessor against Homebrew's libomp (``-Xpreprocessor -fopenmp`` and
    ``-lomp``, with libomp's include and lib directories in CPPFLAGS and
    LDFLAGS: see ``[tool.cibuildwheel.macos]`` in pyproject.toml).
    """
    if not WANT_OPENMP:
        return [], []
    if sys.platform == "win32":
        return ["/openmp"], []
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    env_flags = shlex.split(
        " ".join(os.environ.get(v, "") for v in ("CPPFLAGS", "CFLAGS", "LDFLAGS"))
    )
    candidates = [(["-fopenmp"], ["-fopenmp"]), (["-Xpreprocessor", "-fopenmp"], ["-lomp"])]
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n"
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(src)
        for compile_args, link_args in candidates:
            cmd = cc + env_flags + compile_args + [path, "-o", os.path.join(tmp, "probe")]
            if _builds(cmd + link_args):
                return compile_args, link_args
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if REQUIRE_OPENMP:
        sys.exit(f"bpcore: BPCORE_OPENMP=require but {' '.join(cc)} builds no OpenMP "
                 "program with -fopenmp nor with -Xpreprocessor -fopenmp -lomp")
    print("bpcore: the C compiler does not build OpenMP programs; building single-threaded")
    return [], []


omp_compile, omp_link = openmp_flags()
if sys.platform == "win32":
    compile_args = ["/O2"]
else:
    # -fno-math-errno lets the compiler vectorize sqrt in the optimizer loops;
    # -fno-trapping-math lets it turn floating-point selects (the clamps of
    # our exp, ReLU) into vector blends instead of branches: it only gives up
    # exact floating-point *exception flags*, which nothing here reads, and
    # changes no result. -ffp-contract=off keeps a*b + c as two roundings in
    # every target clone (as NumPy and scikit-learn compute it). No
    # -ffast-math: the kernels must see NaN and inf to report them.
    compile_args = (["-O0", "-g"] if DEBUG else ["-O3", "-fno-math-errno",
                                                  "-fno-trapping-math"]) + [
        "-ffp-contract=off"]

# Release builds ship without debug information (5.6 MB -> about 1.2 MB):
# -g0 after Python's own -g drops it at compile time, and the linker strips
# the local symbol table (-s; the module's exported PyInit symbol lives in the
# dynamic table and stays). Debug builds keep both, and BPCORE_STRIP=0 keeps
# them in an optimized build (tools/asan.sh: ASan's reports need line numbers).
STRIP = os.environ.get("BPCORE_STRIP", "1") not in ("", "0")
if DEBUG or not STRIP or sys.platform == "win32":
    strip_link_args = []
elif sys.platform == "darwin":
    compile_args += ["-g0"]
    strip_link_args = ["-Wl,-S"]
else:
    compile_args += ["-g0"]
    strip_link_args = ["-s"]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,   # C division in debug builds too (see above)
    "nonecheck": DEBUG,
    "embedsignature": True,
}

extensions = [
    Extension(
        "bpcore._kernels",
        # The C sources by role (src/c/*.c; their headers sit beside them).
        sources=["src/_kernels.pyx"] + sorted(glob.glob("src/c/*.c")),
        include_dirs=[np.get_include(), "src/c"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")]
        + ([] if DEBUG else [("CYTHON_WITHOUT_ASSERTIONS", None)]),
        extra_compile_args=compile_args + omp_compile,
        extra_link_args=omp_link + strip_link_args,
    )
]

_STAMP = os.path.join("build", "cython-directives.json")
_WANTED = json.dumps(directives, sort_keys=True)


def directives_changed():
    """True if the C was last generated with other directives (or never here).

    cythonize regenerates the C only when the .pyx is newer, so switching
    BPCORE_DEBUG kept the other mode's C (a "debug" build ran without bounds
    checks, or a release build with them). The directives of the last
    successful build are kept in ``build/``; any change forces a regeneration.
    """
    try:
        with open(_STAMP) as f:
            return f.read() != _WANTED
    except OSError:
        return True


setup(ext_modules=cythonize(extensions, compiler_directives=directives,
                            force=directives_changed() or None))
os.makedirs(os.path.dirname(_STAMP), exist_ok=True)
with open(_STAMP, "w") as f:
    f.write(_WANTED)
