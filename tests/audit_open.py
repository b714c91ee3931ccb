"""Proof that the suite reads nothing outside the repository: an audit hook
(sys.addaudithook) that refuses, and records, every open() and directory
listing of a path outside the repository, the virtualenv, the Python
installation, the temporary directory and the system's own directories.

tests/conftest.py installs it when CHAT_AUDIT_OPEN=1, in every pytest process
(xdist workers too), so the whole suite can be run under it:

    CHAT_AUDIT_OPEN=1 .venv/bin/pytest -q -n 2 --dist loadfile

A session that touched such a path fails and lists the paths. Processes the
tests start themselves (the local server) are not audited. An audit hook cannot
be removed, so tests/test_hermetic.py runs it in a pytest of its own.
"""

import os
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EVENTS = {"open", "os.listdir", "os.scandir"}
SYSTEM_DIRS = ["/dev", "/proc", "/sys", "/etc", "/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/run",
               "/var/lib", "/var/cache", "/opt/conda/ssl"]

_state = {"installed": False, "checked": 0}
_outside: list[str] = []
_busy = threading.local()


def _contains_repo(root: str) -> bool:
    real = os.path.realpath(root)
    return str(REPO).startswith(real.rstrip("/") + "/")


def allowed_roots() -> list[str]:
    # A temporary directory that holds the repository itself (a clone in /tmp)
    # would allow everything beside it: it is left out, and the audited runs
    # get a TMPDIR inside the repository instead (audit_tmpdir()).
    temporary = [root for root in (tempfile.gettempdir(), "/tmp") if not _contains_repo(root)]
    roots = [REPO, sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix, *temporary, *SYSTEM_DIRS]
    return sorted({os.path.realpath(str(root)) for root in roots})


def audit_tmpdir() -> dict:
    """The environment an audited pytest needs: TMPDIR inside the repository
    (git-ignored build/) when the repository is inside the temporary directory."""
    if not any(_contains_repo(root) for root in (tempfile.gettempdir(), "/tmp")):
        return {}
    path = REPO / "build" / "audit-tmp"
    path.mkdir(parents=True, exist_ok=True)
    return {"TMPDIR": str(path)}


_ROOTS = allowed_roots()


def is_allowed(path) -> bool:
    """Whether reading `path` (absolute or relative to the working directory) stays inside the allowed roots,
    symbolic links followed: a link in the repository to something outside it is outside."""
    real = os.path.realpath(os.fsdecode(path))
    return any(real == root or real.startswith(root.rstrip("/") + "/") for root in _ROOTS)


def _hook(event, args):
    if event not in EVENTS or getattr(_busy, "active", False):
        return
    path = args[0] if args else None
    if path is None or isinstance(path, int):  # open(fd), os.listdir(fd), os.scandir() of "."
        return
    _busy.active = True
    try:
        _state["checked"] += 1
        if is_allowed(path):
            return
        shown = os.path.realpath(os.fsdecode(path))
        _outside.append(f"{event} {shown}")
    finally:
        _busy.active = False
    raise PermissionError(f"{event} of {shown}: outside the repository (tests/audit_open.py)")


def install() -> None:
    if not _state["installed"]:
        sys.addaudithook(_hook)
        _state["installed"] = True


def installed() -> bool:
    return _state["installed"]


def checked() -> int:
    return _state["checked"]


def outside() -> list[str]:
    """What was refused so far, in order, without repeats."""
    return list(dict.fromkeys(_outside))
