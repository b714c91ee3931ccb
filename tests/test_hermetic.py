"""Nothing the project runs, tests or documents depends on a path outside the
repository: no tracked file names the reading material the project was written
from, and the suite, run under an audit hook (tests/audit_open.py), opens and
lists nothing outside the repository, the virtualenv and the system."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests import audit_open

REPO = Path(__file__).resolve().parent.parent
# Built from pieces so that this file does not match itself.
_SHARED = "sha" + "red"
FORBIDDEN = [
    "../" + _SHARED, "/" + _SHARED + "/reference", "/" + _SHARED + "/design", "/" + _SHARED + "/seed",
    "/work/" + _SHARED, "voipbin-openapi-" + "schemas", "voipbin-chat-" + "openapi.yaml", "voipbin-" + "behaviour",
    "chat-" + "api.txt",
]
# A few tests that between them load the app, moto, the schemas and the docs, and speak to the API.
REPRESENTATIVE = [
    "tests/test_smoke.py", "tests/test_schemas.py", "tests/test_docs.py", "tests/test_openapi.py",
    "tests/test_messages.py::test_send_chatmessage_answers_fields_in_contract_order",
    "tests/test_paging.py::test_list_envelope_has_result_then_next_page_token",
]


def tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        return [REPO / name for name in os.fsdecode(listed).split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file but the ignored kinds
        skip = {".git", ".venv", "build", "__pycache__", ".pytest_cache"}
        files = []
        for root, dirs, names in os.walk(REPO):
            dirs[:] = [d for d in dirs if d not in skip]
            files += [Path(root) / name for name in names]
        return files


def test_no_tracked_file_refers_to_the_reading_material_outside_the_repository():
    files = tracked_files()
    assert REPO / "tests" / "test_hermetic.py" in files or not (REPO / ".git").exists()
    found = []
    for path in files:
        if not path.is_file() or path.is_symlink():
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        for number, line in enumerate(text.splitlines(), 1):
            found += [f"{path.relative_to(REPO)}:{number}: {pattern}" for pattern in FORBIDDEN if pattern in line]
    assert not found, "files that refer to material outside the repository:\n" + "\n".join(found)


def _audited_pytest(*args, cwd=REPO):
    env = {**os.environ, "CHAT_AUDIT_OPEN": "1", **audit_open.audit_tmpdir()}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


def test_the_suite_reads_nothing_outside_the_repository():
    run = _audited_pytest(*REPRESENTATIVE)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    assert "0 outside the repository" in output, output[-3000:]
    assert "audit_open:" in output and " opens and listings checked" in output, output[-3000:]


def test_the_audit_refuses_and_reports_a_read_outside_even_when_the_error_is_swallowed(tmp_path):
    tmp_path = Path(audit_open.audit_tmpdir().get("TMPDIR", tmp_path))  # readable by the audited run
    probe = tmp_path / "test_probe.py"
    probe.write_text(textwrap.dedent(f"""
        import os

        def test_peeks_outside():
            try:
                os.listdir({str(REPO.parent)!r})
            except OSError:
                pass
    """))
    run = _audited_pytest("-p", "tests.conftest", "--rootdir", str(tmp_path), str(probe))
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert f"refused os.listdir {os.path.realpath(REPO.parent)}" in output, output[-3000:]


def test_the_audit_allows_the_repository_the_virtualenv_and_the_system_but_nothing_beside_them():
    assert audit_open.is_allowed(REPO / "tests" / "schemas" / "chat.json")
    assert audit_open.is_allowed(Path(sys.prefix) / "lib")
    assert audit_open.is_allowed(Path(os.__file__))
    assert not audit_open.is_allowed(REPO.parent)
    assert not audit_open.is_allowed(REPO.parent / _SHARED / "design" / "CONTRACT.md")
    assert not audit_open.is_allowed(REPO.parent / (REPO.name + "-other") / "file")
