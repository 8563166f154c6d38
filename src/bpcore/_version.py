"""The package version, in one place.

``pyproject.toml`` reads it (``[tool.setuptools.dynamic]``) without importing
bpcore, and ``bpcore.__version__`` re-exports it.
"""

__version__ = "0.1.0"
