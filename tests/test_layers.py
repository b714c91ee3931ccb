"""The import graph, drawn from the code itself, points one way: entry points
(HTTP routes, the stream handler, the websocket handlers) on top, services
under them, then authentication and schemas, then storage, then the
foundation. Nothing imports upward, entry points do not import each other,
and the deployed package holds no development tool."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# package (or module) -> layer; a higher layer may import any lower one.
LAYERS = {
    "app": 5,
    "chalicelib.api": 4, "chalicelib.stream": 4, "chalicelib.websocket": 4,
    "chalicelib.services": 3,
    "chalicelib.auth": 2, "chalicelib.schemas": 2,
    "chalicelib.storage": 1, "chalicelib.metrics": 1,  # metrics reads the stage from config
    "chalicelib.config": 0, "chalicelib.clock": 0, "chalicelib.errors": 0, "chalicelib": 0,
}


def unit_of(module: str) -> str:
    """The LAYERS entry a module belongs to (its longest prefix)."""
    parts = module.split(".")
    for size in range(len(parts), 0, -1):
        candidate = ".".join(parts[:size])
        if candidate in LAYERS:
            return candidate
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def project_imports(path: Path) -> set[str]:
    """Every chalicelib module a file imports, at the top or inside a function."""
    found = set()
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
        elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Service" and node.args
              and isinstance(node.args[0], ast.Constant)):
            found.add(node.args[0].value)  # a service imported at first use (chalicelib/api/routing.py)
    return {name for name in found if name == "chalicelib" or name.startswith("chalicelib.")}


SOURCES = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
MODULES = {module_name(path) for path in SOURCES}


def test_every_module_has_a_layer():
    for module in MODULES:
        unit_of(module)


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a unit to another unit of its own layer or above."""
    wrong = []
    for importer, imported_modules in graph.items():
        own = unit_of(importer)
        for imported in imported_modules:
            target = unit_of(imported)
            if target in (own, "chalicelib"):
                continue
            if LAYERS[target] >= LAYERS[own]:
                wrong.append(f"{importer} ({LAYERS[own]}) imports {imported} ({LAYERS[target]})")
    return sorted(wrong)


def test_no_import_points_upward_or_sideways():
    graph = {module_name(path): project_imports(path) for path in SOURCES}
    assert sum(map(len, graph.values())) > 50, "the import graph came out nearly empty"
    wrong = violations(graph)
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_rule_catches_upward_and_sideways_imports():
    assert violations({"chalicelib.storage.models": {"chalicelib.services.chats"}})
    assert violations({"chalicelib.services.events": {"chalicelib.api.routing"}})
    assert violations({"chalicelib.stream.handler": {"chalicelib.api.routing"}})
    assert violations({"chalicelib.auth.tokens": {"chalicelib.schemas.common"}})
    assert not violations({"chalicelib.api.chats": {"chalicelib.services.chats", "chalicelib.errors"}})


def test_lazily_imported_services_count_as_imports():
    graph = project_imports(ROOT / "chalicelib" / "api" / "service_agents.py")
    assert {"chalicelib.services.chatrooms", "chalicelib.services.messages"} <= graph


def test_a_cold_start_imports_neither_pydantic_nor_the_services_nor_boto3():
    """Importing the app (what every Lambda cold start does) stays near a bare
    Chalice app: pydantic loads where a body is parsed, each service at its
    first use, boto3 only where a client of its own is made, PyJWT without
    `cryptography` even where it is installed (bench/RESULTS.md)."""
    import subprocess
    import sys

    code = ("import sys, app; print(sorted({m.split('.')[0] for m in sys.modules}"
            " & {'pydantic', 'boto3', 'cryptography'}),"
            " sorted(m for m in sys.modules if m.startswith('chalicelib.services')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[] []", done.stdout


def test_the_deployed_package_holds_no_development_tool():
    tools = {"moto", "websockets", "devtools", "tests", "bench", "pytest", "chalice.local", "chalice.cli"}
    offenders = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            offenders += [f"{module_name(path)}: {name}" for name in names
                          if any(name == tool or name.startswith(tool + ".") for tool in tools)]
    assert not offenders, offenders
    assert not (ROOT / "chalicelib" / "local").exists()
