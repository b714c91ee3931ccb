"""`make run`'s stack (devtools.run as a subprocess, its embedded DynamoDB, its
stream poller, its websocket server): agent A sends MESSAGES messages in a
1:1 chatroom, one after another; agent B, connected, receives each one's
`messagechatroom_created`. The delay of each is from the moment A's send
answered to the moment B's frame arrived (a reader thread stamps each frame
as it comes, so a frame that beats the answer counts as 0 or less).
"""

import json
import os
import threading
import time
import uuid

from bench import common

MESSAGES = int(os.environ.get("BENCH_WS_MESSAGES", "100"))


def main() -> None:
    from websockets.sync.client import connect

    from tests.local_server import LocalServer, free_port

    ws_port = free_port()
    arrived: dict[str, float] = {}  # messagechat id -> when B's frame came

    with LocalServer(env={"CHAT_WS_PORT": str(ws_port)}) as server:
        customer, a, b = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        sender = server.api(customer, a, name="sender")
        status, room = sender.call("POST", "/chatrooms", {"participant_ids": [b]})
        assert status == 200, room
        with connect(f"ws://127.0.0.1:{ws_port}/?token={server.token(customer, b)}", open_timeout=10) as socket:
            def read():
                for frame in socket:
                    event = json.loads(frame)
                    if event["type"] == "messagechatroom_created":
                        arrived[event["data"]["messagechat_id"]] = time.monotonic()

            threading.Thread(target=read, daemon=True).start()
            answered, give_up = {}, time.monotonic() + 200  # inside run_all's timeout, whatever is lost
            for i in range(MESSAGES):
                if time.monotonic() > give_up:
                    break
                status, copy = sender.call("POST", "/chatroommessages", {"chatroom_id": room["id"], "text": f"m{i}"})
                assert status == 200, copy
                answered[copy["messagechat_id"]] = time.monotonic()
                deadline = time.monotonic() + 10
                while copy["messagechat_id"] not in arrived and time.monotonic() < deadline:
                    time.sleep(0.001)
    delays = [(arrived[m] - t) * 1000 for m, t in answered.items() if m in arrived]
    common.write_result({"messages": len(answered), "received": len(delays), "median_ms": common.median(delays),
                         "p99_ms": common.percentile(delays, 99), "worst_ms": max(delays, default=float("nan")),
                         "load": os.getloadavg()})


if __name__ == "__main__":
    main()
