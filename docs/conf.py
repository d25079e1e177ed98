"""Sphinx configuration of the airflow-provider-mineru documentation (build with scripts/build-docs.sh)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Autodoc imports the provider, which imports Airflow; Airflow reads (and may write) its config
# under AIRFLOW_HOME. Give it a throw-away home unless the caller chose one.
if "AIRFLOW_HOME" not in os.environ:
    _airflow_home = tempfile.mkdtemp(prefix="mineru-docs-airflow-home-")
    os.environ["AIRFLOW_HOME"] = _airflow_home
    atexit.register(shutil.rmtree, _airflow_home, ignore_errors=True)

# Document the checked-out source, even where an older copy is installed.
sys.path.insert(0, str(ROOT))

from airflow_provider_mineru import __version__  # noqa: E402

project = "airflow-provider-mineru"
author = "airflow-provider-mineru developers"
copyright = "airflow-provider-mineru developers"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_snippets", "Thumbs.db", ".DS_Store"]

# MyST: fenced directives, ``{eval-rst}`` blocks, heading anchors for [text](page.md#anchor).
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Autodoc: docstrings are reST with ``:param x:`` fields; types come from the annotations.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = f"airflow-provider-mineru {release}"
html_static_path: list[str] = []
pygments_style = "sphinx"
