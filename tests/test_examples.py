"""The gallery examples: well-formed, and running end to end."""

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))
#: Each example should run in well under a minute on an idle CPU; the limit
#: only catches hangs, with room for a busy machine.
TIMEOUT = 600
#: Calls that draw random numbers and must be given a random_state.
SEEDED = {"AutoencoderTransformer", "PCA", "train_test_split"}


def _ids(path):
    return path.name


def test_examples_exist():
    assert len(EXAMPLES) >= 6
    assert (EXAMPLES_DIR / "README.txt").exists()


@pytest.mark.parametrize("path", EXAMPLES, ids=_ids)
def test_example_is_a_gallery_script(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    docstring = ast.get_docstring(tree, clean=False)
    assert docstring, "a sphinx-gallery example starts with a docstring"
    title_lines = docstring.strip().splitlines()[:3]
    assert set(title_lines[0]) == {"="} and set(title_lines[2]) == {"="}
    assert len(title_lines[0]) == len(title_lines[2]) >= len(title_lines[1])
    assert "\n# %%\n" in source
    for forbidden in ("fetch_", "urlopen", "requests.", "http://", "https://"):
        assert forbidden not in source, f"{forbidden!r}: examples use no network"


@pytest.mark.parametrize("path", EXAMPLES, ids=_ids)
def test_example_sets_random_state(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = getattr(func, "id", getattr(func, "attr", None))
            if name in SEEDED:
                keywords = {k.arg for k in node.keywords}
                # **params dicts must carry it themselves; checked at run time.
                assert "random_state" in keywords or None in keywords, (
                    f"line {node.lineno}: {name}(...) without random_state"
                )


@pytest.mark.parametrize("path", EXAMPLES, ids=_ids)
def test_example_runs(path, tmp_path):
    # Part of the default run (a few minutes in all), so examples cannot rot.
    # One thread: torch's default threads spin under load on a shared box.
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    result = subprocess.run(
        # Every warning is an error: the defaults converge or stop with a
        # clear reason on these data, and no example hides a warning with a
        # filter (an example about warnings records them to show them).
        [sys.executable, "-W", "error", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"{path.name}: {seconds:.1f} s")
    assert not list(tmp_path.iterdir()), "examples must not write files"


@pytest.mark.parametrize("path", EXAMPLES, ids=_ids)
def test_example_hides_no_warning(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            assert name not in ("filterwarnings", "simplefilter") or any(
                isinstance(a, ast.Constant) and a.value == "always" for a in node.args
            ), f"line {node.lineno}: {name} hides warnings"
