"""The folders of gpucost import each other in one direction only, and the product never imports
its test kit, benchmarks or demo (issue #18: "No folder import cycle (tested)").

The graph spans the product (exporter/gpucost) and the packages that live outside the wheel
(tests/gpucost_testing, bench/gpucost_bench, examples/gpucost_demo): each of those is one folder.

The graph is read statically with `ast`: every `import` and `from ... import`, at module level,
inside functions (the lazy imports that keep `--help` fast) and under `if TYPE_CHECKING:`.
TYPE_CHECKING-only imports never run, so they cannot make a runtime import cycle, but they still
tie one folder's code to another's: they count, the stricter reading.

A module belongs to its folder (`gpucost/budgets/spec.py` -> `gpucost.budgets`, a package's
`__init__.py` -> the package itself; `gpucost.sources` and `gpucost.sources.podresources` are two
folders). The loose modules at the top of `gpucost` (app.py, model.py, errors.py, ...) are one
pseudo-folder that everything imports and that imports most folders back; until the #18 layout
work gives them folders of their own, each loose module is its own node, so a cycle that runs
through one of them is still caught without the pseudo-folder making everything one cycle.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

Root = tuple[Path, str]
REPO_ROOT = Path(__file__).resolve().parents[2]
# (folder on sys.path, top-level package): the product, the one package the wheel holds ...
PRODUCT: Root = (REPO_ROOT / "exporter", "gpucost")
# ... and the test kit, the benchmarks and the demo, which left the wheel (#18): they may import
# the product (and the test kit), the product must not need them.
NOT_SHIPPED_ROOTS: tuple[Root, ...] = (
    (REPO_ROOT / "tests", "gpucost_testing"),
    (REPO_ROOT / "bench", "gpucost_bench"),
    (REPO_ROOT / "examples", "gpucost_demo"),
)
ROOTS = (PRODUCT, *NOT_SHIPPED_ROOTS)
NOT_SHIPPED = tuple(package for _, package in NOT_SHIPPED_ROOTS)
# Where the three lived inside the product package before #18.
FORMER_PRODUCT_FOLDERS = ("testing", "bench", "demo")


@dataclass(frozen=True, order=True)
class Import:
    """One import statement's edge from a module to a gpucost module, with where it is written."""

    file: str
    line: int
    importer: str
    imported: str
    # Nodes of the folder graph: the modules' folders (a loose top-level module is its own node).
    importer_node: str
    imported_node: str

    def where(self) -> str:
        return f"{self.file}:{self.line} ({self.importer} -> {self.imported})"


@dataclass(frozen=True)
class Cycle:
    """Folders that reach each other through imports, with one example import per edge among them."""

    folders: frozenset[str]
    examples: tuple[Import, ...]

    def describe(self) -> str:
        lines = [" <-> ".join(sorted(self.folders))]
        lines += [f"    {example.importer_node} -> {example.imported_node}: {example.where()}"
                  for example in self.examples]
        return "\n".join(lines)


def package_modules(source_root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under source_root/package."""
    modules: dict[str, Path] = {}
    for path in sorted((source_root / package).rglob("*.py")):
        parts = path.relative_to(source_root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _known_module(dotted: str, modules: Mapping[str, Path]) -> str | None:
    """The longest prefix of `dotted` that is a module of ours: `gpucost.errors.UserInputError` -> gpucost.errors."""
    while dotted and dotted not in modules:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def _from_base(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a `from X import ...` reads from, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    # `from . import x` in a package's __init__ is the package itself; in a module, its parent.
    anchor = module.split(".") if is_package else module.split(".")[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def graph_node(module: str, modules: Mapping[str, Path], product: str) -> str:
    """The module's folder, or the module itself if it is a loose module at the top of the product;
    a package outside the product (the test kit, the benchmarks, the demo) is one folder."""
    package = module.partition(".")[0]
    if package != product:
        return package
    folder = module if _is_package(modules[module]) else module.rpartition(".")[0]
    return module if folder == package and module != package else folder


def imports_of(module: str, modules: Mapping[str, Path], source_root: Path, product: str) -> list[Import]:
    """Every import in the module's file (under source_root), wherever it is written, that lands on one of `modules`."""
    path = modules[module]
    found: list[Import] = []
    file = str(path.relative_to(source_root))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, module, _is_package(path))
            # `from gpucost.budgets import names` imports the module gpucost.budgets.names.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in sorted(set(targets)):
            imported = _known_module(target, modules)
            if imported is not None:
                found.append(Import(file, node.lineno, module, imported,
                                    graph_node(module, modules, product), graph_node(imported, modules, product)))
    return found


def modules_by_root(roots: tuple[Root, ...]) -> dict[Root, dict[str, Path]]:
    return {root: package_modules(*root) for root in roots}


@functools.cache  # three tests read the same trees
def import_graph(roots: tuple[Root, ...] = ROOTS) -> tuple[Import, ...]:
    """The imports among all the roots' modules (the first root is the product): an import of a
    package that is not scanned is no edge."""
    product = roots[0][1]
    by_root = modules_by_root(roots)
    modules = {name: path for root_modules in by_root.values() for name, path in root_modules.items()}
    return tuple(sorted(found for (source_root, _), root_modules in by_root.items() for module in root_modules
                        for found in imports_of(module, modules, source_root, product)))


def folder_edges(imports: Iterable[Import]) -> dict[tuple[str, str], Import]:
    """(from node, to node) -> the first import (by file and line) that makes the edge."""
    edges: dict[tuple[str, str], Import] = {}
    for found in sorted(imports):
        key = (found.importer_node, found.imported_node)
        if key[0] != key[1]:
            edges.setdefault(key, found)
    return edges


def strongly_connected(edges: Iterable[tuple[str, str]]) -> list[frozenset[str]]:
    """Tarjan's components with more than one node: each is a set of nodes on a common cycle."""
    successors: dict[str, list[str]] = {}
    for source, target in edges:
        successors.setdefault(source, []).append(target)
        successors.setdefault(target, [])
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = lowest[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(successors[node]):
            if successor not in index:
                visit(successor)
                lowest[node] = min(lowest[node], lowest[successor])
            elif successor in on_stack:
                lowest[node] = min(lowest[node], index[successor])
        if lowest[node] == index[node]:
            component: set[str] = set()
            while not component or node not in component:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
            if len(component) > 1:
                components.append(frozenset(component))

    for node in sorted(successors):
        if node not in index:
            visit(node)
    return components


def folder_cycles(imports: Iterable[Import]) -> list[Cycle]:
    edges = folder_edges(imports)
    return [Cycle(component, tuple(sorted(example for (source, target), example in edges.items()
                                          if source in component and target in component)))
            for component in strongly_connected(edges)]


def _in_folder(module: str, folder: str) -> bool:
    return module == folder or module.startswith(folder + ".")


def product_imports_of_unshipped(imports: Iterable[Import], not_shipped: tuple[str, ...] = NOT_SHIPPED) -> list[Import]:
    """Imports from a shipped module into the test kit, the benchmarks or the demo."""
    return [found for found in imports
            if not any(_in_folder(found.importer, folder) for folder in not_shipped)
            and any(_in_folder(found.imported, folder) for folder in not_shipped)]


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_graph_sees_lazy_relative_and_type_checking_imports_and_names_each_cycle_edge(tmp_path: Path) -> None:
    _write(tmp_path, "pkg/__init__.py", "")
    _write(tmp_path, "pkg/core.py", "")
    _write(tmp_path, "pkg/a/__init__.py", "")
    _write(tmp_path, "pkg/a/one.py", "def later() -> None:\n    from ..b import two\n")
    _write(tmp_path, "pkg/b/__init__.py",
           "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.c.three\n")
    _write(tmp_path, "pkg/b/two.py", "from pkg import core\n")
    _write(tmp_path, "pkg/c/__init__.py", "")
    _write(tmp_path, "pkg/c/three.py", "from pkg.a import one\nfrom pkg.core import anything\n")

    imports = import_graph(((tmp_path, "pkg"),))
    cycles = folder_cycles(imports)

    assert Import("pkg/a/one.py", 2, "pkg.a.one", "pkg.b.two", "pkg.a", "pkg.b") in imports
    assert [cycle.folders for cycle in cycles] == [frozenset({"pkg.a", "pkg.b", "pkg.c"})]
    assert [example.where() for example in cycles[0].examples] == [
        "pkg/a/one.py:2 (pkg.a.one -> pkg.b.two)",
        "pkg/b/__init__.py:3 (pkg.b -> pkg.c.three)",
        "pkg/c/three.py:1 (pkg.c.three -> pkg.a.one)",
    ]


def test_loose_top_level_modules_are_nodes_of_their_own(tmp_path: Path) -> None:
    _write(tmp_path, "pkg/__init__.py", "")
    _write(tmp_path, "pkg/app.py", "import pkg.a.one\n")
    _write(tmp_path, "pkg/model.py", "import pkg.b.two\n")
    _write(tmp_path, "pkg/a/__init__.py", "")
    _write(tmp_path, "pkg/a/one.py", "import pkg.model\n")
    _write(tmp_path, "pkg/b/__init__.py", "")
    _write(tmp_path, "pkg/b/two.py", "import pkg.model\n")

    # app -> a -> model is layering, not a cycle; model <-> b is one.
    cycles = folder_cycles(import_graph(((tmp_path, "pkg"),)))

    assert [cycle.folders for cycle in cycles] == [frozenset({"pkg.model", "pkg.b"})]


def test_packages_from_other_roots_are_one_folder_each_and_an_import_into_the_kit_is_caught(tmp_path: Path) -> None:
    _write(tmp_path, "src/pkg/__init__.py", "")
    _write(tmp_path, "src/pkg/app.py", "import kit.fakes\n")
    _write(tmp_path, "src/pkg/a/__init__.py", "")
    _write(tmp_path, "src/pkg/a/one.py", "def later() -> None:\n    from kit import harness\n")
    _write(tmp_path, "kits/kit/__init__.py", "")
    _write(tmp_path, "kits/kit/fakes.py", "from pkg import app\n")
    _write(tmp_path, "kits/kit/harness.py", "import pkg.a.one\nimport yaml\n")

    imports = import_graph(((tmp_path / "src", "pkg"), (tmp_path / "kits", "kit")))

    assert Import("kit/harness.py", 1, "kit.harness", "pkg.a.one", "kit", "pkg.a") in imports
    # One cycle through the kit: pkg.a -> kit -> pkg.a and pkg.app -> kit -> pkg.app.
    assert [cycle.folders for cycle in folder_cycles(imports)] == [frozenset({"kit", "pkg.a", "pkg.app"})]
    assert [found.where() for found in product_imports_of_unshipped(imports, ("kit",))] == [
        "pkg/a/one.py:2 (pkg.a.one -> kit.harness)",
        "pkg/app.py:1 (pkg.app -> kit.fakes)",
    ]


def test_the_test_kit_benchmarks_and_demo_live_outside_the_product_package() -> None:
    # Each root must hold modules: an import of a package the graph does not scan is no edge, so a
    # wrong root would hide the product's imports of it.
    assert all(modules for modules in modules_by_root(ROOTS).values())
    assert [name for name in FORMER_PRODUCT_FOLDERS if (PRODUCT[0] / PRODUCT[1] / name).exists()] == []


def test_no_import_cycle_between_folders() -> None:
    cycles = folder_cycles(import_graph())

    assert not cycles, "folders that import each other:\n" + "\n".join(cycle.describe() for cycle in cycles)


def test_shipped_folders_never_import_the_test_kit_benchmarks_or_demo() -> None:
    violations = product_imports_of_unshipped(import_graph())

    assert not violations, "shipped code importing what leaves the wheel:\n" + "\n".join(
        f"    {found.where()}" for found in violations)
