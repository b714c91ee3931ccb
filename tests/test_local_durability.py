"""`make run` keeps its data: the server as a subprocess in its own process
group, killed (SIGKILL) or stopped (SIGINT, SIGTERM) while writes and their
fan-out are in flight, then started again on the same data directory.

What must hold after the restart, through the HTTP API:
- every write that was answered 200 is there (and writes never answered may be);
- every message stored has exactly one copy in every participant's chatroom:
  the fan-out not done before the stop is done after it, none is doubled;
- tokens signed before the restart still work (the secret is kept).
"""

import http.client
import signal
import threading
import time
import uuid

import pytest

from devtools.journal import Journal
from tests.local_server import LocalServer, eventually

AGENTS = 3
WRITERS = 4
CONFIRMED_BEFORE_STOP = 10


def list_all(api, path):
    """Every item of a list endpoint, page by page."""
    items, token = [], ""
    for _ in range(100):
        separator = "&" if "?" in path else "?"
        status, page = api.call("GET", f"{path}{separator}page_size=100" + (f"&page_token={token}" if token else ""))
        assert status == 200, page
        items += page["result"]
        token = page.get("next_page_token") or ""
        if not token:
            return items
    raise AssertionError(f"{path}: more than 100 pages")


class Workload:
    """A group chat of AGENTS agents; WRITERS threads send into it, half as the
    customer (POST /chatmessages), half as agents in their chatroom (POST
    /chatroommessages), until the server goes away."""

    def __init__(self, server):
        self.customer_id = str(uuid.uuid4())
        self.agents = [str(uuid.uuid4()) for _ in range(AGENTS)]
        self.customer = server.api(self.customer_id)
        self.apis = {a: server.api(self.customer_id, a, name=f"agent-{i}") for i, a in enumerate(self.agents)}
        status, chat = self.customer.call("POST", "/chats", {
            "type": "group", "owner_id": self.agents[0], "participant_ids": self.agents, "name": "durable"})
        assert status == 200, chat
        self.chat_id = chat["id"]
        self.rooms = {}
        for agent, api in self.apis.items():
            status, page = api.call("GET", "/chatrooms")
            assert status == 200 and len(page["result"]) == 1, page
            self.rooms[agent] = page["result"][0]["id"]
        self.confirmed: list[str] = []
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._write, args=(k,), daemon=True) for k in range(WRITERS)]

    def _write(self, k):
        agent = self.agents[k % AGENTS]
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                if k % 2:
                    status, body = self.apis[agent].call(
                        "POST", "/chatroommessages", {"chatroom_id": self.rooms[agent], "text": f"w{k}-{i}"})
                    sent = body.get("messagechat_id") if status == 200 else None
                else:
                    status, body = self.customer.call("POST", "/chatmessages", {
                        "chat_id": self.chat_id, "source": {"type": "agent", "target": agent},
                        "type": "normal", "text": f"w{k}-{i}"})
                    sent = body.get("id") if status == 200 else None
            except (OSError, http.client.HTTPException):
                return  # the server is gone: this request was never answered
            self.statuses.append(status)
            if sent:
                self.confirmed.append(sent)
            else:
                time.sleep(0.05)

    def start(self):
        for thread in self._threads:
            thread.start()

    def wait_for(self, count, deadline=30):
        assert eventually(lambda: len(self.confirmed) >= count, deadline), f"only {len(self.confirmed)} writes"

    def join(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(20)

    def check_everything_kept(self):
        """Every confirmed message is stored, and every stored one (confirmed
        or not) is copied exactly once into every chatroom."""
        status, chat = self.customer.call("GET", f"/chats/{self.chat_id}")
        assert status == 200, chat
        stored = [m["id"] for m in list_all(self.customer, f"/chatmessages?chat_id={self.chat_id}")]
        assert len(stored) == len(set(stored))
        missing = set(self.confirmed) - set(stored)
        assert not missing, f"{len(missing)} of {len(self.confirmed)} confirmed messages lost"

        def copies():
            return {agent: [c["messagechat_id"] for c in
                            list_all(self.apis[agent], f"/chatroommessages?chatroom_id={room}")]
                    for agent, room in self.rooms.items()}

        def complete():
            found = copies()
            return all(sorted(ids) == sorted(stored) for ids in found.values())

        if not eventually(complete, 30, interval=0.5):
            found = copies()
            report = {agent[:8]: (len(ids), len(set(ids)), len(set(stored) - set(ids))) for agent, ids in found.items()}
            raise AssertionError(f"{len(stored)} messages; per room (copies, distinct, missing): {report}")
        return len(stored)


def unhandled_stream_records(data_dir, table="chat"):
    """What the data directory says is still to be fanned out (read while the server is down)."""
    return len(Journal(data_dir / "dynamodb", table).load().pending)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_restart_keeps_every_confirmed_write_and_finishes_the_fan_out(tmp_path, signum):
    # secret=None: the server makes and keeps the data directory's secret, as make run does.
    server = LocalServer(secret=None, data_dir=tmp_path)
    server.start()
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o777 == 0o600
    try:
        work = Workload(server)
        work.start()
        work.wait_for(CONFIRMED_BEFORE_STOP)
        # Writes in flight, and their copies mostly not made yet: stop the whole group now.
        started = time.monotonic()
        status = server.kill_group(signum)
        stop_seconds = time.monotonic() - started
        work.join()
        if signum == signal.SIGKILL:
            assert status == -signal.SIGKILL
        else:
            assert status == 0, server.output()[-3000:]
            assert stop_seconds < 2.0, f"stopping took {stop_seconds:.2f} s"
        # Requests begun before a stop are answered; one arriving on a kept-alive connection
        # after Ctrl-C is refused with 503 (and a connection is refused once nobody listens).
        assert set(work.statuses) <= {200, 503}, sorted(set(work.statuses))
        pending = unhandled_stream_records(tmp_path)
        assert pending > 0, "the fan-out had caught up: this run did not test stream work in flight"

        started = time.monotonic()
        server.start()  # same data directory, same port: the tokens above are reused
        restart_seconds = time.monotonic() - started
        stored = work.check_everything_kept()
        assert f"{pending} stream records to deliver" in server.output(), server.output()[-3000:]
        errors = [line for line in server.output().splitlines() if " ERROR " in line]
        assert not errors, "\n".join(errors)
        print(f"{signal.Signals(signum).name}: {len(work.confirmed)} confirmed, {stored} stored, "
              f"{pending} stream records re-delivered; stop {stop_seconds:.2f} s, restart {restart_seconds:.2f} s")
    finally:
        server.stop()


def test_ephemeral_runs_start_empty_and_keep_nothing(tmp_path):
    customer_id = str(uuid.uuid4())
    for _ in range(2):
        with LocalServer(data_dir=tmp_path, env={"CHAT_EPHEMERAL": "1"}) as server:
            api = server.api(customer_id)
            assert api.call("GET", "/chats") == (200, {"result": [], "next_page_token": ""})
            owner = str(uuid.uuid4())
            status, chat = api.call("POST", "/chats", {
                "type": "group", "owner_id": owner, "participant_ids": [owner, str(uuid.uuid4())], "name": "gone"})
            assert status == 200, chat
            assert "Data: not kept" in server.output()
    assert not (tmp_path / "dynamodb").exists()


def test_one_data_directory_serves_one_run(tmp_path):
    with LocalServer(data_dir=tmp_path):
        second = LocalServer(data_dir=tmp_path, start_timeout=20)
        with pytest.raises(RuntimeError, match="is in use by pid"):
            second.start()
