"""The installed package carries its version, license, type marker and kernels.

`.ci/run` also runs the suite against the installed sdist and wheel with
``BPCORE_EXPECT_INSTALLED=1``: then bpcore must come from site-packages, not
from a source tree that happens to be importable.
"""
import importlib.metadata
import os
from pathlib import Path

import pytest

import bpcore
from bpcore import _version


def test_version_single_source():
    assert bpcore.__version__ == _version.__version__
    assert bpcore.__version__ == importlib.metadata.version("bpcore")


def test_metadata_license():
    meta = importlib.metadata.metadata("bpcore")
    assert meta["License-Expression"] == "BSD-3-Clause"
    license_files = [f for f in importlib.metadata.files("bpcore") or [] if f.name == "LICENSE"]
    assert license_files, "LICENSE is not in the installed distribution"
    assert "bpcore developers" in license_files[0].read_text()


def test_py_typed_marker():
    assert (Path(bpcore.__file__).parent / "py.typed").is_file()


@pytest.mark.skipif(
    os.environ.get("BPCORE_EXPECT_INSTALLED") != "1",
    reason="only when .ci/run tests an installed sdist or wheel (BPCORE_EXPECT_INSTALLED=1)",
)
def test_imported_from_site_packages():
    for module in (bpcore, bpcore._kernels):
        parts = Path(module.__file__).resolve().parts
        assert "site-packages" in parts, f"{module.__name__} imported from {module.__file__}"
