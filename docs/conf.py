"""Sphinx configuration (skeleton; the API pages generated from the docstring schema come later)."""

project = "xmarl"
author = "xmarl developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
html_theme = "furo"
exclude_patterns = ["_build"]
autodoc_mock_imports = ["torch", "tensorflow", "mindspore"]
