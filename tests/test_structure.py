"""The package's structure, checked from the code's own imports (what issue 13 asked to keep true).

- No import cycle between the packages under ``provisioner/`` (module-level imports; imports under
  ``if TYPE_CHECKING:`` are annotations only).
- A function-local import of memprov's own modules only in ``provisioner/cli/`` (a verb's work is
  loaded when the verb runs, so that ``memprov --help`` stays fast); everywhere else the dependency
  edges are module-level, where a reader and these checks see them. Third-party and standard-library
  modules may be imported lazily (the SDKs, matplotlib, jinja...).
- No hook is discovered at run time with ``hasattr``, and no backend, target or verb is looked up by
  name through ``importlib``.
- Every alert kind has one module registered in :data:`provisioner.kinds.ALL`, in :class:`Kind` order.
"""

from __future__ import annotations

import ast
from collections import defaultdict

from provisioner.kinds import ALL
from provisioner.kinds.base import Kind
from tests.helpers import ROOT

PACKAGE = ROOT / "provisioner"


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        out[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return out


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.module == "provisioner":
        return [f"provisioner.{a.name}" for a in node.names]
    return [node.module or ""]


def _imports(tree: ast.Module) -> tuple[list[str], list[str]]:
    """(module-level imports, function-local imports) outside ``if TYPE_CHECKING:`` blocks."""
    top: list[str] = []
    local: list[str] = []

    def visit(nodes: list[ast.stmt], in_function: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import | ast.ImportFrom):
                (local if in_function else top).extend(_imported(node))
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    nested = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                    visit([c for c in children if isinstance(c, ast.stmt | ast.ExceptHandler)], nested)

    visit(tree.body, False)
    return top, local


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_no_import_cycle_between_packages() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for name, tree in _modules().items():
        for target in _imports(tree)[0]:
            if target.startswith("provisioner.") and _package(target) != _package(name):
                edges[_package(name)].add(_package(target))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        if start == goal:
            return True
        seen.add(start)
        return any(reaches(n, goal, seen) for n in edges.get(start, ()) if n not in seen)

    cycles = sorted((a, b) for a in list(edges) for b in edges[a] if reaches(b, a, set()))
    assert not cycles, f"packages that import each other: {cycles}"
    assert "kinds" in edges["spec"] and "spec" not in edges["kinds"]  # the check sees real edges


def test_memprov_modules_are_imported_lazily_only_by_the_cli_verbs() -> None:
    found = [
        f"{name} imports {target} inside a function"
        for name, tree in _modules().items()
        if not name.startswith("provisioner.cli.")
        for target in _imports(tree)[1]
        if target.startswith("provisioner")
    ]
    assert not found, "\n".join(found)


def test_no_hook_is_discovered_at_run_time() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "hasattr":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: hasattr")
            if isinstance(node, ast.Attribute) and node.attr == "import_module":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: importlib.import_module")
    allowed = {"provisioner/core/yamlio.py", "provisioner/core/yamlfast.py"}  # libyaml's C emitter/parser if installed
    assert [f for f in found if f.split(":")[0] not in allowed] == []


def test_every_kind_has_one_module_in_kind_order() -> None:
    assert [k.kind for k in ALL] == list(Kind)
    for kind in ALL:
        module = PACKAGE / "kinds" / f"{kind.kind.value}.py"
        assert module.is_file(), f"kind {kind.kind} has no module {module}"
        assert kind.explain and kind.names, kind.kind


def test_each_backend_declares_the_kinds_it_alerts_on() -> None:
    """SUPPORTS (declared, as octodns' providers do) agrees with what the backend renders and reports."""
    from provisioner.backends.cloud import CloudBackend
    from provisioner.backends.registry import BACKENDS
    from provisioner.spec.loader import load

    assert frozenset(Kind) == BACKENDS["prometheus"].SUPPORTS
    assert not BACKENDS["grafana"].SUPPORTS and not BACKENDS["alertmanager"].SUPPORTS
    for env in ("aws", "azure", "gcp"):
        spec = load(ROOT / "memprov.yaml", env)
        for name, cls in BACKENDS.items():
            if not issubclass(cls, CloudBackend) or not spec.jobs_using(name):
                continue
            backend = cls(spec)
            rendered = {Kind((r.body.get("Tags") and _tag(r.body)) or _kind_of(r.body)) for r in backend.desired}
            assert rendered <= cls.SUPPORTS, (name, rendered - cls.SUPPORTS)
            for s in backend.support():
                if s.kind not in cls.SUPPORTS:
                    assert s.support.level.value == "unsupported", (name, s)


def _kind_of(body: dict[str, object]) -> str:
    labels = body.get("userLabels") or body.get("tags") or {}
    assert isinstance(labels, dict)
    return str(labels["memprov-kind"])


def _tag(body: dict[str, object]) -> str:
    tags = body["Tags"]
    assert isinstance(tags, list)
    return str(next(t["Value"] for t in tags if t["Key"] == "memprov-kind"))


def test_every_cloud_rendering_says_what_it_needs() -> None:
    """memprov explain reads the metrics and agent settings from the same table entries that render."""
    from provisioner.render import azure, cloudwatch, gcp

    for module in (cloudwatch, gcp, azure):
        missing = [k for k, r in module.TABLE.items() if r.render is not None and r.needs is None]
        assert not missing, (module.__name__, missing)
