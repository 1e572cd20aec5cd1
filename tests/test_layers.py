"""The package's layers: a module imports only from its own layer or lower ones."""

import ast
from pathlib import Path

import pytest

SKAE = Path(__file__).resolve().parents[1] / "skae"

#: Layers from the ground up; a module's layer is the first prefix it matches.
LAYERS = [
    ("ground", ["skae._devices", "skae._runtime", "skae._version", "skae.exceptions"]),
    ("data", ["skae._data"]),
    ("networks", ["skae._nn"]),
    ("training", ["skae._training", "skae.callbacks"]),
    ("inference", ["skae._inference"]),
    ("face", ["skae._checks", "skae._fitted", "skae._base", "skae._estimator"]),
    ("estimators", ["skae._variational"]),
    ("public", ["skae.persistence", "skae._format", "skae._restore", "skae.metrics"]),
    ("public", ["skae.plotting", "skae"]),
]


def _module_name(path):
    parts = path.relative_to(SKAE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """The skae modules ``path`` imports (at any depth of the file)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("skae"):
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _exists(candidate) else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("skae")}
    return found - {name}


def _exists(module):
    relative = Path(*module.split("."))
    return (SKAE.parent / relative).with_suffix(".py").is_file() or (
        SKAE.parent / relative / "__init__.py"
    ).is_file()


def _layer(module):
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    return best[0]


GRAPH = {_module_name(p): _imports(p) for p in SKAE.rglob("*.py")}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_a_module_imports_no_higher_layer(module):
    higher = sorted(m for m in GRAPH[module] if _layer(m) > _layer(module))
    assert not higher, f"{module} ({LAYERS[_layer(module)][0]}) imports {higher}"


def test_no_import_circle():
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(GRAPH.get(module, ())):
            if target not in GRAPH or target == "skae":
                continue
            if state.get(target) == "open":
                cycle = path[path.index(target) :] + [target]
                raise AssertionError(" -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_the_rules_see_the_imports():
    # The graph is read from the code: the training loop imports the
    # schedules it steps, the face imports the data layer it loads through.
    assert "skae._training.schedules" in GRAPH["skae._training.loop"]
    assert "skae._data.rows" in GRAPH["skae._base"]
