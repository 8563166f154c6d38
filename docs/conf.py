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
    "myst_parser",  # the Markdown pages: SCALING.md (scale-out), benchmarks.md
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# Markdown pages link to repository files (benchmarks/..., src/...) that are
# not pages of this site; they stay plain links.
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]

# The reference has a page per public module (docs/api.rst), each listing its
# __all__ with the template in _templates/module.rst: a name added to an
# __all__ appears without touching the docs.
autosummary_generate = True
autosummary_ignore_module_all = False
autosummary_imported_members = True
templates_path = ["_templates"]
# DESIGN.md (the developers' design notes) and saving.md (the format's
# fuzzing record) are repository documents, not pages of the user docs.
exclude_patterns = ["_build", "generated/*.md", "DESIGN.md", "saving.md"]

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
# every build, and warnings are errors in .ci/run. The full numpydoc
# validation of the public API (every parameter documented, ...) is
# tools/check_docstrings.py, also run by .ci/run.
numpydoc_validation_checks = {"EX01"}
numpydoc_validation_exclude = {
    r"^bpcore\.\w+\.\w+",  # methods, attributes, submodules' names: examples optional
}

html_theme = "alabaster"
html_static_path = []
html_title = f"bpcore {release}"
