"""The `make run` server as a subprocess on a free port, for tests (and the
long fuzz run) that speak to it over real HTTP.

    with LocalServer() as server:
        api = server.api(customer_id=...)              # a customer token
        api = server.api(customer_id=..., agent_id=...)  # an agent token
        status, body = api.call("GET", "/chats")

Its data directory is a temporary one of its own (never the repository's
.data/), removed when it stops, unless the test names one (restart tests).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from chalicelib import auth
from tests import schema_check

ROOT = Path(__file__).resolve().parent.parent
SECRET = "e2e-secret-e2e-secret-e2e-secret-e2e-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(check, deadline_seconds=20.0, interval=0.05):
    """Poll until check() returns something truthy or the deadline passes."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


class Api:
    """One caller (a token) speaking JSON to the server. Every answer is checked
    against the schema of its route (tests/schema_check.py)."""

    def __init__(self, base, token, timeout=15):
        self.base, self.token, self.timeout = base, token, timeout

    def call(self, method, path, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base}{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "text/plain", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw, answer_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, answer_headers = error.code, error.read(), error.headers
        schema_check.check_response(method, urlsplit(self.base).path + path, status, raw)
        schema_check.check_answer_size(status, dict(answer_headers.items()), raw)
        return status, json.loads(raw)


class LocalServer:
    """`python -m devtools.run` on a free port, with its own embedded
    DynamoDB, in a process group of its own; stopped (killed if need be) on
    exit. Output goes to a log file so a chatty server can never block on a
    full pipe. `secret=None`: the server uses (and keeps) its data directory's."""

    def __init__(self, secret=SECRET, env=None, start_timeout=60.0, data_dir=None):
        self.secret = secret
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.base = f"{self.base_url}/v1.0"
        self.console_port = free_port()
        self.console_url = f"http://127.0.0.1:{self.console_port}/"  # the agent console (devtools/console_server.py)
        self._extra_env = env or {}
        self._start_timeout = start_timeout
        self._own_data_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="chat-local-data-"))
        self.process = None
        self._log = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "AWS_"))}
        # Every port free, so servers of parallel test workers never collide.
        env.update(CHAT_PORT=str(self.port), CHAT_WS_PORT=str(free_port()), CHAT_DATA_DIR=str(self.data_dir),
                   CHAT_CONSOLE_PORT=str(self.console_port), PYTHONUNBUFFERED="1")
        if self.secret is not None:
            env["CHAT_JWT_SECRET"] = self.secret
        # Send limits far above what a test sends, unless the test sets its own (tests/test_limits.py).
        env.update(CHAT_AGENT_SENDS_PER_WINDOW="1000000", CHAT_CUSTOMER_SENDS_PER_WINDOW="1000000")
        env.update(self._extra_env)
        self._log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.run"], cwd=ROOT, env=env,
            stdout=self._log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )

        def answers():
            try:
                urllib.request.urlopen(f"{self.base}/chats", timeout=1)
            except urllib.error.HTTPError:
                return True  # 401 without a token: it is up
            except OSError:
                return self.process.poll() is not None  # stop waiting if it died
            return True

        if not eventually(answers, self._start_timeout) or self.process.poll() is not None:
            output = self.output()
            self.stop()
            raise RuntimeError(f"the local server did not start:\n{output}")
        if self.secret is None:
            self.secret = (self.data_dir / "jwt-secret").read_text().strip()

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        text = self._log.read()
        self._log.seek(0, os.SEEK_END)
        return text

    def stop(self, timeout=15):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill_group(signal.SIGKILL)
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def kill_group(self, signum=signal.SIGKILL, timeout=15):
        """Signal the server's whole process group (what Ctrl-C or kill -9 -PGID
        does to make run); wait for it to end, and return its exit status."""
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass
        return self.process.wait(timeout=timeout)

    def token(self, customer_id, agent_id=None, name="", permission=16):
        if agent_id is None:
            return auth.mint(self.secret, customer_id=customer_id)
        return auth.mint(self.secret, customer_id=customer_id, agent_id=agent_id, name=name, permission=permission)

    def api(self, customer_id, agent_id=None, name="", permission=16) -> Api:
        return Api(self.base, self.token(customer_id, agent_id, name, permission))
