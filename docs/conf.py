"""Sphinx configuration: the API reference from bpcore's docstrings (numpydoc).

Build (``pip install "bpcore[docs]"``, from any directory)::

    sphinx-build -W --keep-going -b html docs /tmp/bpcore-html

The docs document the *installed* bpcore (the compiled kernels must be
importable): nothing here puts the source tree on ``sys.path``.
"""

import bpcore

project = "bpcore"
author = "bpcore developers"
copyright = "2026, bpcore developers"
version = release = bpcore.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]

# The reference lists bpcore.__all__ (docs/api.rst documents the module with
# the template in _templates/autosummary/module.rst): a name added to
# __all__ appears without touching the docs.
autosummary_generate = True
autosummary_ignore_module_all = False
autosummary_imported_members = True
templates_path = ["_templates"]
exclude_patterns = ["_build", "generated/*.md", "DESIGN.md"]

autodoc_default_options = {
    "members": True,
    # scikit-learn's metadata-routing setters, documented by scikit-learn.
    "exclude-members": "set_fit_request, set_partial_fit_request, set_score_request, "
    "get_metadata_routing",
}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Every public name (bpcore.__all__) needs an Examples section: checked on
# every build, and warnings are errors in .ci/run.
numpydoc_validation_checks = {"EX01"}
numpydoc_validation_exclude = {
    r"^bpcore\.\w+\.\w+",  # methods and attributes: examples optional
    # Names that have no Examples section yet; their modules are being
    # rewritten. Delete each line as its example lands.
    r"^bpcore\.(AdaGrad|DivergenceError|Optimizer|RMSProp|SGD)$",
}

html_theme = "alabaster"
html_static_path = []
html_title = f"bpcore {release}"
