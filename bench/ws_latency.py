"""Send-to-receipt delay of websocket pushes in the local stack (make run's
server as a subprocess): one agent sends 100 messages, another, connected,
times each messagechatroom_created of its own copy.

    .venv/bin/python bench/ws_latency.py            # prints the figures
    .venv/bin/python -m bench.ws_latency OUT.json   # as run_all.py runs it: also writes them to OUT.json
"""

import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.sync.client import connect  # noqa: E402

from tests.local_server import LocalServer, free_port  # noqa: E402

MESSAGES = 100


def main() -> dict:
    ws_port = free_port()
    with LocalServer(env={"CHAT_WS_PORT": str(ws_port)}) as server:
        customer = str(uuid.uuid4())
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        api_a = server.api(customer, a, name="sender")
        _, room = api_a.call("POST", "/chatrooms", {"participant_ids": [b]})
        delays = []
        with connect(f"ws://127.0.0.1:{ws_port}/?token={server.token(customer, b)}", open_timeout=10) as socket:
            for i in range(MESSAGES):
                sent_at = time.monotonic()
                status, copy = api_a.call("POST", "/chatroommessages", {"chatroom_id": room["id"], "text": f"m{i}"})
                assert status == 200, copy
                while True:
                    event = json.loads(socket.recv(timeout=10))
                    if event["type"] == "messagechatroom_created" and event["data"]["messagechat_id"] == copy[
                            "messagechat_id"]:
                        delays.append((time.monotonic() - sent_at) * 1000)
                        break
    result = {"messages": MESSAGES, "median_ms": statistics.median(delays), "worst_ms": max(delays),
              "p90_ms": statistics.quantiles(delays, n=10)[-1]}
    print(json.dumps(result))
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
