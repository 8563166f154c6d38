"""Declares the compiled core, `bpcore._kernels`; metadata lives in pyproject.toml.

Set ``BPCORE_DEBUG=1`` in the environment to build with bounds checking,
wraparound checks and assertions on (slower; for debugging the kernels).
"""
import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("BPCORE_DEBUG", "0") not in ("", "0")

if sys.platform == "win32":
    compile_args = ["/O2"]
else:
    # -fno-math-errno lets the compiler vectorize sqrt in the optimizer loops;
    # we do not use -ffast-math: the kernels must see NaN and inf to report them.
    compile_args = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-math-errno"]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "nonecheck": DEBUG,
    "embedsignature": True,
}

extensions = [
    Extension(
        "bpcore._kernels",
        sources=["src/_kernels.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")]
        + ([] if DEBUG else [("CYTHON_WITHOUT_ASSERTIONS", None)]),
        extra_compile_args=compile_args,
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
