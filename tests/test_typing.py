"""Types for user code: `mypy --strict` on a user's script reports nothing.

tests/typing/user_code.py calls the estimators (``fit`` returning the
estimator's own type), save/load, to_onnx, callbacks, schedules, the core
API and bpcore.dask. Skipped without mypy (not in the test extra; .ci/run
installs it and runs the same check against the installed wheel).
"""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import bpcore

USER_CODE = Path(__file__).resolve().parent / "typing" / "user_code.py"


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_strict_on_user_code(tmp_path):
    # The bpcore under test: a source tree's src/ (mypy reads its py.typed)
    # or site-packages, where mypy finds it by itself.
    src = Path(bpcore.__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--python-version", "3.10",
         "--ignore-missing-imports", "--follow-imports=silent", "--no-incremental",
         "--cache-dir", str(tmp_path),
         str(USER_CODE)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
        env={"MYPYPATH": str(src), "PATH": "", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success: no issues found" in out.stdout
