"""The README's quick start runs as written."""

import re
import warnings
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quick_start_runs_without_a_warning(capsys):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the defaults converge on these data
        exec(compile(code, str(README), "exec"), {})
    printed = capsys.readouterr().out.split("\n")
    accuracy, best, score = float(printed[0]), printed[1], float(printed[2])
    assert 0.8 < accuracy <= 1.0
    assert "n_components" in best
    assert score < 0


def test_readme_names_the_commands_ci_runs():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    install = 'pip install -e ".[test,dask,accelerate]"'
    assert install in text and install in ci
    assert 'python -m pytest -m "not slow"' in text
    assert 'python -m pytest -m "not slow"' in ci
