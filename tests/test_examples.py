"""The scripts in examples/ run to the end and print no warning.

Each runs in its own process (BPCORE_EXAMPLE_QUICK=1: a few seconds each, a
few epochs); a warning an example expects is silenced in the example itself,
with the reason beside it, so anything on stderr is a regression.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bpcore

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py")) if EXAMPLES.is_dir() else []


def test_examples_are_found():
    if not EXAMPLES.is_dir():
        pytest.skip("no examples/ beside tests/ (run from a checkout or an unpacked sdist)")
    assert len(SCRIPTS) >= 3


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_example_runs_clean(script, tmp_path):
    # The bpcore under test (a source tree on PYTHONPATH, or site-packages).
    path = os.pathsep.join([str(Path(bpcore.__file__).resolve().parents[1]),
                            os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "BPCORE_EXAMPLE_QUICK": "1", "MPLBACKEND": "Agg", "PYTHONPATH": path}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "", f"{script.name} wrote to stderr:\n{out.stderr}"
    assert out.stdout.strip(), f"{script.name} printed nothing"
