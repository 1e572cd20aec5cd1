"""Sphinx configuration of skae's documentation.

Build (executes the gallery examples; warnings are errors; no network):

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Add ``-D plot_gallery=0`` to skip running the examples.
"""

import os
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import skae  # noqa: E402

# -- Project -----------------------------------------------------------------

project = "skae"
author = "skae developers"
copyright = "skae developers"
release = skae.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "gen_modules/backreferences", "**.ipynb_checkpoints"]
default_role = "literal"
# No intersphinx: the build must not need the network. References to other
# projects' objects render as plain code.

autosummary_generate = True
autodoc_typehints = "none"

# -- numpydoc ----------------------------------------------------------------

numpydoc_show_class_members = False  # the autosummary templates list members
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# Validate the docstrings of every documented public object against all of
# numpydoc's checks except: extended summaries (ES01), See Also (SA01) and
# Examples (EX01) on every method, and RT02, which forbids scikit-learn's
# named returns ("self : object").
numpydoc_validation_checks = {"all", "ES01", "SA01", "EX01", "RT02"}
numpydoc_validation_exclude = {
    r"\.__init__$",
    r"\.__sklearn_tags__$",
    r"\.set_.*_request$",  # metadata-routing methods written by scikit-learn
    r"\.on_\w+$",  # skorch callback hooks, documented by skorch
}

# -- sphinx-gallery -------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("skae",),
    "image_scrapers": ("matplotlib",),
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "show_signature": False,
}

# -- HTML ----------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skae {release}"
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "getting_started": [], "benchmarks": []}
html_static_path = []
html_show_sourcelink = False

# -- Benchmark tables ------------------------------------------------------------
# benchmarks/results/*.md are Markdown written by the benchmark scripts. Sphinx
# reads reStructuredText, so each is converted here (headings, pipe tables,
# paragraphs) into gen_modules/benchmarks/*.rst, which benchmarks.rst
# includes. A missing file becomes a note saying how to produce it.

BENCHMARKS = {
    "speed": "python benchmarks/speed.py",
    "strategies": "python benchmarks/strategies.py",
    "memory": "python benchmarks/memory.py",
    "family": "python benchmarks/family.py",
    "pca_time": "python benchmarks/pca_time.py",
    "pca_start_cost": "python benchmarks/pca_start_cost.py",
    "downstream": "python benchmarks/downstream.py",
}


def _escape(text):
    """Escape what reStructuredText would read as markup in plain text."""
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return re.sub(r"(?<=\w)_(?!\w)", r"\\_", text)  # name_ is a reference


def _inline(text):
    """Markdown inline markup -> reStructuredText inline markup."""
    out = []
    # Split off code spans (`code`) and links ([text](url)); escape the rest.
    pattern = r"(`[^`]+`|\[[^\]]+\]\([^)]+\))"
    for i, part in enumerate(re.split(pattern, text)):
        if i % 2 == 0:
            out.append(_escape(part))
        elif part.startswith("`"):
            out.append(f"``{part[1:-1]}``")
        else:
            label, url = re.match(r"\[([^\]]+)\]\(([^)]+)\)", part).groups()
            out.append(f"`{_escape(label)} <{url}>`__")
    return "".join(out)


def _cell(text):
    text = _inline(text.strip())
    if not text:
        return ".."  # an empty cell
    if re.match(r"^([-*+]|#\.|\d+\.)(\s|$)", text):
        text = "\\" + text  # would start a list
    return text


def _cells(line):
    return [_cell(cell) for cell in line.strip().strip("|").split("|")]


def _table(lines):
    header, rows = _cells(lines[0]), [_cells(line) for line in lines[2:]]
    out = [".. list-table::", "   :header-rows: 1", "   :class: benchmark-table", ""]
    for row in [header, *rows]:
        row = (row + [".."] * len(header))[: len(header)]
        out.append(f"   * - {row[0]}")
        out.extend(f"     - {cell}" for cell in row[1:])
    return [*out, ""]


def markdown_to_rst(text):
    """Convert the Markdown the benchmark scripts write to reStructuredText."""
    lines, out, i = text.splitlines(), [], 0
    underline = {1: "=", 2: "-", 3: "~", 4: "^"}
    while i < len(lines):
        line = lines[i]
        heading = re.match(r"^(#{1,4})\s+(.*)$", line)
        is_table = (
            line.lstrip().startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\s*\|?\s*:?-{3,}", lines[i + 1])
        )
        if heading:
            title = _inline(heading.group(2).strip())
            # Level 1 and 2 are taken by the page; tables' headings go below.
            char = underline[min(len(heading.group(1)) + 1, 4)]
            out += ["", title, char * len(title), ""]
            i += 1
        elif is_table:
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i])
                i += 1
            out += ["", *_table(block)]
        elif line.startswith("```"):
            i += 1
            out += ["", ".. code-block:: text", ""]
            while i < len(lines) and not lines[i].startswith("```"):
                out.append("   " + lines[i])
                i += 1
            out.append("")
            i += 1
        else:
            out.append(_inline(line))
            i += 1
    return "\n".join(out) + "\n"


def write_benchmark_pages():
    target = HERE / "gen_modules" / "benchmarks"
    target.mkdir(parents=True, exist_ok=True)
    for name, command in BENCHMARKS.items():
        source = ROOT / "benchmarks" / "results" / f"{name}.md"
        if source.exists():
            text = markdown_to_rst(source.read_text(encoding="utf-8"))
        else:
            text = (
                ".. note::\n\n"
                f"   ``benchmarks/results/{name}.md`` has not been generated yet. "
                f"Run ``{command}`` from the repository root and rebuild the "
                "docs.\n"
            )
        page = target / f"{name}.rst.inc"
        if not page.exists() or page.read_text(encoding="utf-8") != text:
            page.write_text(text, encoding="utf-8")


write_benchmark_pages()
os.environ.setdefault("MPLBACKEND", "Agg")


# -- Docstring shapes ----------------------------------------------------------
# Shapes written with fitted attributes, such as "ndarray of shape
# (n_features_in_,)", would be read as reStructuredText references
# ("n_features_in_" ends with "_"); show such names as code.

_SHAPE = re.compile(r"shape \(([^)]*)\)")
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w])(\w+_)(?=[,\s]|$)")


def _literal_shape(match):
    return "shape (" + _TRAILING_UNDERSCORE.sub(r"``\1``", match.group(1)) + ")"


def _literal_shapes(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        lines[i] = _SHAPE.sub(_literal_shape, line)


def setup(app):
    app.connect("autodoc-process-docstring", _literal_shapes, priority=600)
