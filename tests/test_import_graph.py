"""No import cycles inside app/, and no feature package reaches into app/cli.py.

The graph: one node per module under app/ (a package is its ``__init__``); an edge ``a -> b`` for every
``import app.b`` / ``from app... import ...`` (absolute or relative) that runs when ``a`` is imported:
statements at module level, including inside module-level ``if`` / ``try`` blocks, but not under
``if TYPE_CHECKING:`` (never run). ``from pkg import name`` points at ``pkg.name`` when that is a module,
otherwise at ``pkg``. Imports inside a function body run only when called and are allowed to break a
cycle (e.g. the queue's after-commit hook reads ``app.extensions.jobs``); a module's implicit import of
its parent package is not an edge (as in grimp).

Why not grimp: it builds the graph from every import, function-local ones included, and gives no way to
leave those out; this reading is 60 lines of the standard library's ``ast``.

Blueprint packages therefore define ``bp`` and a ``load_views()`` that create_app calls, instead of
importing their view modules at the bottom of ``__init__`` (each view module imports ``bp`` back).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import REPO

APP = REPO / "app"


def module_names(root: Path) -> dict[str, Path]:
    names = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _module_level(body):
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                yield from _module_level(node.body)
                yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from _module_level(block)


def _nearest(name: str, modules: dict) -> str | None:
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in modules else None


def _targets(module: str, node, modules: dict, top: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [t for a in node.names if a.name.split(".")[0] == top and (t := _nearest(a.name, modules))]
    base = node.module or ""
    if node.level:
        package = module if modules[module].name == "__init__.py" else module.rsplit(".", 1)[0]
        for _ in range(node.level - 1):
            package = package.rsplit(".", 1)[0]
        base = f"{package}.{base}" if base else package
    if base.split(".")[0] != top:
        return []
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else _nearest(base, modules) for a in node.names]


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_names(root)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = {t for node in _module_level(tree.body)
                       for t in _targets(name, node, modules, root.name) if t and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of two or more modules (Tarjan), as a sorted list."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                on_stack.discard(w)
                group.append(w)
            on_stack.discard(v)
            if group:
                found.append(sorted([v, *group]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_app_has_no_module_level_import_cycle():
    graph = import_graph(APP)
    assert len(graph) > 50 and "app.queue" in graph["app.extensions"]  # the real app/ was read
    assert "app.extensions" not in graph["app.queue"]  # its after-commit hook imports jobs when it runs
    assert cycles(graph) == []


def test_the_check_finds_a_cycle_and_ignores_function_level_and_type_checking_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "views").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("try:\n    from . import c\nexcept ImportError:\n    pass\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text("def f():\n    from pkg import e\n")
    (pkg / "e.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import d\n"
                              "from pkg import d\n")
    (pkg / "views" / "__init__.py").write_text("from flask import Blueprint\nbp = Blueprint('v', __name__)\n"
                                               "from pkg.views import routes\n")
    (pkg / "views" / "routes.py").write_text("from pkg.views import bp\n")
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.views", "pkg.views.routes"]]


def test_no_feature_module_imports_the_cli():
    """Demo-data steps and other registries are listed in create_app, not appended by the packages."""
    reaching = []
    for path in sorted(APP.rglob("*.py")):
        if path in (APP / "__init__.py", APP / "cli.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "app.cli" or (
                    isinstance(node, ast.ImportFrom) and node.module == "app"
                    and any(a.name == "cli" for a in node.names)) or (
                    isinstance(node, ast.Import) and any(a.name == "app.cli" for a in node.names)):
                reaching.append(str(path.relative_to(REPO)))
    assert reaching == []


def test_seed_demo_steps_are_listed_once_in_order(app):
    from app import cli, notify

    assert [f.__name__ for f in cli.SEED_HOOKS] == [
        "seed_demo_holders", "seed_exemptions", "seed_demo_requests", "seed_rejection_reasons"]
    assert [f.__module__ for f in notify.DELIVERY_EXPANDERS] == ["app.auth.invitations", "app.exemptions.services"]


def _all_imports(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file, function bodies included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_the_renderer_reads_the_agency_without_the_issuing_module():
    """The certificate modules and documents.py (issuing, delivery) no longer need each other for the agency."""
    certificate_modules = ("layout", "certificate_data", "rendering", "stamping", "batching", "sample")
    for name in certificate_modules:
        assert "app.insurance.documents" not in _all_imports(APP / "insurance" / f"{name}.py"), name
    assert not ({f"app.insurance.{n}" for n in certificate_modules} | {"app.insurance.documents"}) & _all_imports(
        APP / "insurance" / "agency.py")


def test_the_job_queue_plumbing_imports_nothing_from_the_app():
    """app/queue.py is created by app/extensions.py; it finds the queue through the Flask app, not back."""
    assert {m for m in _all_imports(APP / "queue.py") if m.split(".")[0] == "app"} == set()
