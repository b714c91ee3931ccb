"""The README's tutorial, run as written against the make run server: the
shell block(s) of its section "The seed's tutorial, locally" are read from
README.md itself and run with bash, so the two cannot drift apart.

Only the server's address is changed (the README's `localhost:8000`, to the
free port this test's server listens on); the data directory is handed over
through CHAT_DATA_DIR, which the README tells users to set when they moved it.
"""

import json
import os
import re
import subprocess

import pytest

from tests.local_server import ROOT, LocalServer

SECTION = "### The seed's tutorial, locally"
ADDRESS = "localhost:8000"


def tutorial(section: str = SECTION) -> str:
    """The shell block(s) of a section of README.md, joined."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index(section) + len(section)
    following = re.compile(r"^##+ ", re.M).search(readme, start)
    blocks = re.findall(r"```sh\n(.*?)```", readme[start:following.start() if following else None], re.S)
    assert blocks, f"no ```sh block under {section!r}"
    return "\n".join(blocks)


def test_the_tutorial_block_names_the_server_once():
    # The test changes only this: every call must go through the one address.
    text = tutorial()
    assert text.count(ADDRESS) == 1, "the tutorial should name localhost:8000 once (API=...)"
    assert "curl" in text
    assert not re.search(r"<[a-z][^>]*>", text), "a placeholder for the reader to fill in"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # As make run: no CHAT_JWT_SECRET, the data directory keeps the secret.
    with LocalServer(secret=None, data_dir=tmp_path_factory.mktemp("data")) as running:
        yield running


def run_tutorial(server) -> subprocess.CompletedProcess:
    script = tutorial().replace(ADDRESS, f"127.0.0.1:{server.port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "AWS_"))}
    env["CHAT_DATA_DIR"] = str(server.data_dir)
    return subprocess.run(["bash", "-eu", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=90)


def test_the_readme_tutorial_runs_as_written(server):
    # Twice: the data is kept, and the tutorial cleans up after itself so it can be run again.
    for attempt in range(2):
        done = run_tutorial(server)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"run {attempt + 1}:\n{output}"
        assert '"Code"' not in output, f"run {attempt + 1}: an error response:\n{output}"
        chats, message, copies, deleted = (json.loads(line) for line in done.stdout.splitlines())
        chat = next(c for c in chats["result"] if c["name"] == "test chat normal")
        assert message["chat_id"] == chat["id"] and message["text"] == "test message"
        assert [c["messagechat_id"] for c in copies["result"]] == [message["id"]]  # agent 1's copy
        assert deleted["id"] == chat["id"] and not deleted["tm_delete"].startswith("9999"), output
