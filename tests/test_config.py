"""bpcore.show_config(): the build and runtime facts, public."""
import pytest

import bpcore
from bpcore import _kernels
from bpcore._threads import thread_limit


def test_show_config_dicts():
    info = bpcore.show_config(mode="dicts")
    assert info["bpcore"] == bpcore.__version__
    assert info["openmp"] is bool(_kernels.has_openmp())
    assert info["threads"] == thread_limit()
    assert info["available_cpus"] >= 1
    import sklearn
    assert info["dependencies"]["scikit-learn"] == sklearn.__version__
    assert set(info["optional"]) >= {"matplotlib", "onnx", "skl2onnx", "dask", "torch"}
    assert isinstance(info["blas"], list)


def test_show_config_prints(capsys):
    assert bpcore.show_config() is None
    out = capsys.readouterr().out
    assert out.startswith(f"bpcore {bpcore.__version__} on Python")
    assert ("built with OpenMP" if _kernels.has_openmp() else "built WITHOUT OpenMP") in out
    assert "drop-in parity supports scikit-learn" in out


def test_show_config_bad_mode():
    with pytest.raises(ValueError, match="mode must be 'stdout' or 'dicts', got 'json'"):
        bpcore.show_config(mode="json")
