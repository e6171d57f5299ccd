"""The package is layered as kd_bert/layers.py declares: no import cycles, no import that runs up the order
(at module level or inside a function), every folder and module with its layer, and docs/architecture.md's
table of layers written from the declaration."""

import ast
import subprocess
import sys

from helpers import PACKAGE, REPO, package_imports, package_modules

from kd_bert.layers import ENTRY_SCRIPTS, LAYERS


def unit_of(module: str) -> str:
    """The folder or top-level module a module belongs to: "data.read" -> "data", "config" -> "config"."""
    return module.split(".")[0]


def layer_of() -> dict[str, int]:
    return {unit: number for number, layer in enumerate(LAYERS) for unit in layer.units}


def import_graph() -> dict[str, set[str]]:
    """Each module's imports of the package, the entry scripts' included (by file name)."""
    modules = package_modules()
    graph = {name: package_imports(name, tree, modules) for name, tree in modules.items()}
    for script in ENTRY_SCRIPTS:
        graph[script] = package_imports(None, ast.parse((REPO / script).read_text(encoding="utf-8")), modules)
    return graph


def test_the_package_has_no_import_cycles():
    graph = import_graph()
    cycles = []

    def visit(module, path):
        for dep in graph.get(module, ()):
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep in graph:
                visit(dep, path + [dep])

    for module in graph:
        visit(module, [module])
    assert not cycles, cycles


def test_every_folder_and_module_has_one_layer():
    declared = [unit for layer in LAYERS for unit in layer.units]
    assert len(declared) == len(set(declared)), "a unit is declared in two layers"
    present = {unit_of(name) for name in package_modules()} | set(ENTRY_SCRIPTS)
    assert present == set(declared), (f"not in kd_bert/layers.py: {sorted(present - set(declared))}; "
                                      f"declared but absent: {sorted(set(declared) - present)}")
    assert all((PACKAGE / unit).is_dir() or (PACKAGE / f"{unit}.py").is_file() or unit in ENTRY_SCRIPTS
               for unit in declared)


def test_no_import_runs_up_the_layers():
    """A module imports from its own folder, or from a layer below its own. Units of one layer are
    independent: neither imports the other."""
    layers = layer_of()
    wrong = []
    for module, imports in import_graph().items():
        unit = module if module in ENTRY_SCRIPTS else unit_of(module)
        for dep in imports:
            dep_unit = unit_of(dep)
            if dep_unit != unit and layers[dep_unit] >= layers[unit]:
                how = "up" if layers[dep_unit] > layers[unit] else "across its layer"
                wrong.append(f"{module} imports {dep} ({how}: {dep_unit} is layer {layers[dep_unit] + 1}, "
                             f"{unit} layer {layers[unit] + 1})")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_checker_sees_lazy_and_absolute_imports():
    """An import inside a function, relative or absolute, is an import: the checker above must see it."""
    code = ("def f():\n    from ..jobs import distill\n    import kd_bert.train.loop\n"
            "    from kd_bert import cli\n    from kd_bert.models.load import load_teacher\n")
    found = package_imports("data.read", ast.parse(code), package_modules())
    assert found == {"jobs.distill", "train.loop", "cli", "models.load"}


def test_the_architecture_page_shows_the_declared_layers():
    result = subprocess.run([sys.executable, "scripts/layers_doc.py", "--check"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, f"docs/architecture.md is stale: run python scripts/layers_doc.py\n{result.stderr}"


def test_the_configs_import_no_torch():
    """The registries the configs are built from sit below them, torch-free."""
    probe = "import sys, kd_bert.config; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
