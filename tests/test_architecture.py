"""The package's shape, checked: no import cycle between modules, imports only run down the layers, few top modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

from kdlab import result_keys

PACKAGE = REPO / "kdlab"
# Each concern's layer: a module may import its own package and anything in a lower layer, never a higher one.
LAYERS = {
    "__main__": 10, "cli": 9,
    "sweeps": 8, "students": 8,
    "run": 7,
    "report": 6, "teacher": 6,
    "post": 5, "datafree": 5,
    "training": 4,
    "terms": 3,
    "models": 2,
    "data": 1,
    "measure": 0, "losses": 0, "instantiate": 0, "tracking": 0,
    "errors": -1, "io": -1, "paths": -1, "result_keys": -1,
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, known: set[str]) -> set[str]:
    """The kdlab modules ``path`` imports anywhere in its body (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("kdlab")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kdlab"):
            for alias in node.names:  # `from kdlab.x import y` imports the module kdlab.x.y when y is one
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return found & known


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, set(found)) - {name} for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def concern(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules() -> None:
    assert find_cycle(import_graph()) is None


def test_imports_run_down_the_layers() -> None:
    upward = []
    for module, targets in import_graph().items():
        if module == "kdlab":
            continue
        for target in targets:
            here, there = concern(module), concern(target)
            if there != here and target != "kdlab" and LAYERS[there] >= LAYERS[here]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports against the layer order:\n" + "\n".join(sorted(upward))


def test_every_concern_has_a_layer_and_the_top_stays_small() -> None:
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(top) <= 10, top
    concerns = {concern(m) for m in modules()} - {"__init__"}
    assert concerns <= set(LAYERS), concerns - set(LAYERS)


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_each_package_says_what_it_is_for(package: str) -> None:
    assert ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text())), package


def test_readme_lists_exactly_the_result_keys() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Results") : readme.index("## Sweeps")]
    listed = {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}
    assert listed - {k for k in listed if "<" in k} == set(result_keys.DOCUMENTED)


# Below the run layer functions take typed settings and ``_target_`` nodes (kdlab.instantiate.Node), never the run's
# composed config: these modules alone turn it into settings, each for its own concern.
CONFIG_READERS = {
    "kdlab.teacher.recipe": "the teacher's recipe and output settings, read once from the run config",
    "kdlab.teacher.cache": "the teacher cache key hashes the config content that shapes the weights (via the recipe)",
    "kdlab.teacher.members": "composes each ensemble member's run config for kdlab.teacher.recipe",
    "kdlab.datafree.settings": "checks kd.transfer and kd.generator and reads them into GeneratorSettings",
    "kdlab.post.settings": "checks the post node and reads the fine-tunes' FinetuneSettings",
    "kdlab.report.settings": "reads the report's ReportSettings from the run config (and kdlab-evaluate's)",
    "kdlab.data.transfer": "rewrites the data node before it is built (transfer-set class exclusion)",
}
BELOW_THE_RUN_LAYER = {name for name, layer in LAYERS.items() if layer < LAYERS["run"]}


def config_parameters(path: Path) -> list[str]:
    """``function(parameter)`` for each parameter named ``cfg`` or annotated with ``DictConfig`` in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                annotation = ast.unparse(arg.annotation) if arg.annotation is not None else ""
                if arg.arg == "cfg" or "DictConfig" in annotation:
                    found.append(f"{node.name}({arg.arg})")
    return found


def test_config_parameters_finds_cfg_and_dictconfig(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f(cfg, x: int): ...\ndef g(node: 'DictConfig | None'): ...\ndef h(node: Node): ...\n")
    assert config_parameters(source) == ["f(cfg)", "g(node)"]


def test_the_config_stays_at_the_top() -> None:
    """Below the run layer a module is read and tested without a composed config: no parameter is one."""
    assert set(CONFIG_READERS) <= set(modules()), set(CONFIG_READERS) - set(modules())
    found = [
        f"{name}.{where}"
        for name, path in modules().items()
        if concern(name) in BELOW_THE_RUN_LAYER and name not in CONFIG_READERS
        for where in config_parameters(path)
    ]
    assert not found, "below the run layer, take typed settings instead of the config:\n" + "\n".join(sorted(found))
