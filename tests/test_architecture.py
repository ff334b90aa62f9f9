"""The package's shape: no import cycle, layers import downwards only, Keras imported lazily,
modules short, and one home for the run directory's paths (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "leukoscope"
#: modules that are Keras models or Keras data pipelines and may import Keras when imported
KERAS_MODULES = {"leukoscope.segmentation.unet", "leukoscope.pipeline.image_batches"}
ALGORITHMS = ("leukoscope.segmentation", "leukoscope.features", "leukoscope.classifiers")
#: the pipeline modules above the infrastructure: the stages, the graph that wires them, the command line
UPPER = ("leukoscope.pipeline.stages", "leukoscope.pipeline.graph", "leukoscope.pipeline.cli",
         "leukoscope.pipeline.train_refiner")


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every leukoscope module ``path`` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found.update(n for n in names if n in modules)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = {_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(path, set(files)) - {name} for name, path in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle(graph):
    assert _cycles(graph) == []


def test_a_cycle_would_be_found():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_algorithms_never_import_the_pipeline(graph):
    wrong = {m: sorted(t for t in targets if t.startswith("leukoscope.pipeline"))
             for m, targets in graph.items() if m.startswith(ALGORITHMS)}
    assert {m: t for m, t in wrong.items() if t} == {}


def test_no_stage_imports_another_and_infrastructure_imports_no_stage(graph):
    wrong = {}
    for module, targets in graph.items():
        if module.startswith("leukoscope.pipeline.stages."):
            bad = [t for t in targets if t.startswith(UPPER)]
        elif module.startswith("leukoscope.pipeline") and not module.startswith(UPPER):
            bad = [t for t in targets if t.startswith(UPPER)]
        else:
            continue
        if bad:
            wrong[module] = sorted(bad)
    assert wrong == {}


def test_keras_is_imported_lazily_outside_model_modules():
    modules = sorted(_name(p) for p in PACKAGE.rglob("*.py") if _name(p) not in KERAS_MODULES)
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_module_over_400_lines():
    long = {_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


def test_run_directory_paths_are_built_in_the_layout_module_only():
    """A stage asks the layout for a mask, a table or a folder instead of joining names by hand."""
    by_hand = re.compile(r'''/ "(segmentation|features|heads|compare|masks|overlays)"|/ f"(cnn|head)_|f"(cnn|head)_\{''')
    wrong = [f"{_name(p)}:{i}" for p in (PACKAGE / "pipeline").rglob("*.py") if p.name not in ("layout.py", "demo.py")
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if by_hand.search(line)]
    assert wrong == []
