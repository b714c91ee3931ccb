"""The registry of the bench's sections: what `bench/run_all.py` runs and
`bench/report.py` writes into bench/RESULTS.md, in order.

Each section is a module `bench/<name>.py`, run in its own process as
`python -m bench.<name> OUT.json`; it writes its figures to OUT.json
(`common.write_result`). run_all.py collects them in bench/results.json and
report.py renders each section, numbered in `order`.

Adding a section touches no shared file. Put, at the top level of the new
module `bench/<name>.py`:

    SECTION = {"title": "Large groups through the local server", "order": 25, "timeout": 900}

    def main(): ...                       # measure, then common.write_result({...})

    def render(data: dict) -> list[str]:  # the section's Markdown lines, from what main() wrote
        ...

    def headline(data: dict, number: int) -> tuple[list[list], list[str]]:  # optional
        ...  # rows [figure, measured, floor / target, ratio, verdict] for the headline table,
             # and lines for "Above target, and why" (empty when all is well)

`SECTION` must be a literal dict (it is read without importing the module):
`title` (required), `order` (where it goes: the built-in sections below are
at 10, 20, ..., so 25 lands between the second and the third), `timeout`
seconds (default 900) and `default` (False: run only when named, as
`run_all.py <name>`; default True). The module is imported only to render,
so keep its top level light (import the service inside main()).

The built-in sections render in report.py (they predate this registry) and
are listed in BUILTIN; bench/coldstart.py is one of them, unchanged.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Section:
    name: str  # the module bench/<name>.py, and its key in results.json
    title: str
    order: int
    timeout: int = 900
    default: bool = True  # run by `run_all.py` without names
    builtin: bool = False  # rendered by report.py; else by the module's own render()/headline()


BUILTIN = (
    Section("cost", "DynamoDB cost per operation", 10, builtin=True),
    Section("groups", "Large groups: 2, 10, 100 and 1,000 participants", 20, builtin=True),
    Section("growth", "Cost as data grows", 30, builtin=True),
    Section("fanout", "Fan-out through the stream", 40, builtin=True),
    Section("coldstart", "Cold start", 50, builtin=True),
    Section("warm", "Warm overhead", 60, builtin=True),
    Section("load", "The local server under load", 70, builtin=True),
    Section("memory", "Memory", 80, builtin=True),
    Section("ws_latency", "Websocket push latency, local stack", 90, builtin=True),
)


def _declared(path: Path) -> dict | None:
    """The module's top-level `SECTION = {...}` literal, or None."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SECTION" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            return value if isinstance(value, dict) and "title" in value else None
    return None


def all_sections() -> list[Section]:
    """Every section, built-in and declared, in order (then by name)."""
    found = {section.name: section for section in BUILTIN}
    for path in sorted(BENCH.glob("*.py")):
        declared = _declared(path)
        if declared is None or path.stem in found:
            continue
        found[path.stem] = Section(path.stem, str(declared["title"]), int(declared.get("order", 1000)),
                                   int(declared.get("timeout", 900)), bool(declared.get("default", True)))
    return sorted(found.values(), key=lambda s: (s.order, s.name))


def numbers() -> dict[str, int]:
    """Each section's number in RESULTS.md: its place among all sections (run or not), so §n stays put."""
    return {section.name: index for index, section in enumerate(all_sections(), start=1)}
