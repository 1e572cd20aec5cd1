"""The documentation lists every public name, and builds without warnings (slow)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import skae
import skae.callbacks
import skae.metrics
import skae.plotting

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _public_names():
    names = {f"skae.{name}" for name in skae.__all__ if name != "__version__"}
    for module in (skae.callbacks, skae.metrics, skae.plotting):
        names |= {f"{module.__name__}.{name}" for name in module.__all__}
    return names


def _documented_names():
    """Names listed in the autosummary tables of api.rst, fully qualified."""
    documented, module, in_table = set(), None, False
    for line in (DOCS / "api.rst").read_text(encoding="utf-8").splitlines():
        if m := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = m.group(1)
        elif line.startswith(".. autosummary::"):
            in_table = True
        elif in_table and re.match(r"^   [A-Za-z_]\w*$", line):
            documented.add(f"{module}.{line.strip()}")
        elif in_table and line and not line.startswith(" "):
            in_table = False
    return documented


def test_api_reference_lists_every_public_name():
    assert _public_names() <= _documented_names()


def test_api_reference_lists_only_existing_names():
    for name in _documented_names():
        module, _, attr = name.rpartition(".")
        assert hasattr(sys.modules[module], attr), name


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    """Build the HTML docs, warnings as errors, without running the examples."""
    pytest.importorskip("sphinx")
    pytest.importorskip("sphinx_gallery")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-D",
            "plot_gallery=0",
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
