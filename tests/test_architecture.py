"""The package's shape, enforced: layers that import only downwards, no import cycles,
and the lazy-import rule for the deep-learning frameworks.

Imports are read from the source (module-level and function-level alike), so a local
import cannot dodge a contract.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "seqclf"

# Bottom to top: a module may import modules of its own layer or of lower ones.
LAYERS = [
    {"errors", "sections", "progress", "report", "outputs", "summary", "probability"},
    {"backend", "split_step"},  # split_step: the split training step (TensorFlow)
    {"models"},  # the family plugins and their Keras layers (seqclf/models/)
    {"config"},
    {"data"},  # the data package (seqclf/data/): readers, checks, splits, preprocessing
    {"runs", "model", "distributed", "compute", "prepare", "callbacks", "streaming"},
    {"evaluate", "fitting", "train", "datasets", "export", "init"},
    {"compare", "estimator", "experiment", "reference", "serving", "repeats", "explain"},
    {"search"},
    {"sweep"},
    {"cli", "__main__"},
]
# ``seqclf.SequenceClassifier`` is the public entry point: the package's __init__
# imports the estimator on first attribute access only, and everything may import the
# package itself (for __version__).
EXEMPT = {("seqclf", "seqclf.estimator")}
# Frameworks that take seconds to import: only modules of registered Keras layers import
# them at module level (they are imported once a model is built or loaded).
FRAMEWORKS = ("tensorflow", "keras", "jax", "torch")


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        mods[".".join(parts)] = path
    return mods


def _imports(path: Path, module_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        deps = set()
        for target in _imports(path):
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name:
                deps.add(target)
        graph[name] = deps
    return graph


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself
        return 0
    for n, layer in enumerate(LAYERS):
        if parts[1] in layer:
            return n
    raise AssertionError(f"{module} is in no layer of tests/test_architecture.py: add it")


def test_every_module_has_a_layer():
    for module in _modules():
        _layer(module)


def test_imports_point_down_the_layers():
    wrong = [f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
             for a, deps in _graph().items() for b in deps
             if _layer(b) > _layer(a) and (a, b) not in EXEMPT and b != "seqclf"]
    assert not wrong, "imports that point up:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = _graph()
    for a, b in EXEMPT:
        graph[a].discard(b)
    graph = {m: {d for d in deps if d != "seqclf"} for m, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """The control: an upward import and a cycle are found."""
    fake = tmp_path / "seqclf"
    (fake / "models").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "models" / "__init__.py").write_text("")
    (fake / "errors.py").write_text("from seqclf import config\n")
    (fake / "config.py").write_text("def f():\n    import seqclf.errors\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    with pytest.raises(AssertionError, match="seqclf.errors .*imports seqclf.config"):
        test_imports_point_down_the_layers()
    with pytest.raises(AssertionError, match="import cycle"):
        test_no_import_cycles()


def test_frameworks_are_imported_lazily():
    """Only the modules of registered Keras layers import a framework at module level;
    everything else imports it inside the function that needs it."""
    eager = []
    for name, path in _modules().items():
        if name.endswith(".layers") or name.endswith("_layers"):
            continue
        for target in _imports(path, module_level_only=True):
            if target.split(".")[0] in FRAMEWORKS:
                eager.append(f"{name} imports {target} at module level")
    assert not eager, "\n".join(eager)


def test_the_readme_key_reference_is_generated_from_the_config_classes():
    """Every key of every section and family, with its default and description; rewrite
    it with `python -m seqclf.reference README.md`."""
    from seqclf.reference import END, START, markdown

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = START + text.split(START, 1)[1].split(END, 1)[0] + END
    assert shown == markdown(), "README key reference is stale: python -m seqclf.reference README.md"
    from seqclf.models import registry

    for name, module in registry.families().items():
        assert f"family `{name}`" in shown
        for key in module.Config.model_fields:
            assert f"| `{key}` |" in shown, (name, key)
