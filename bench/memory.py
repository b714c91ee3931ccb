"""Memory: peak RSS of one Lambda-like process handling 10,000 mixed
requests through the Chalice handler (app.app(event, context) with API
Gateway proxy events) against moto in the same process.

moto's memory is part of that process, so a second fresh process measures a
baseline: moto (same version, same patches) holding the same data (the
service's final items, written through moto's request path, with as many
stream records as the service's writes left), and no service. The service's
share is the difference of the two peaks. A cross-check runs the same
process and mix against moto's server in the parent process (loopback), so
that nothing of moto is in the measured process. Peaks are VmHWM (see
bench/coldstart_child.py for why not ru_maxrss).

The mix (per 100): 30 list a chatroom's messages (page of 20), 25 send a
chatroommessage, 10 get a chatroommessage, 10 list own chatrooms, 8 get a
chat, 5 send a chatmessage, 5 list chats, 4 get a chatroom, 2 rename a
chatroom, 1 create a chat. The stream handler is another Lambda function
and is not run here.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import common

REQUESTS = int(os.environ.get("BENCH_MEMORY_REQUESTS", "10000"))
REMOTE_REQUESTS = int(os.environ.get("BENCH_MEMORY_REMOTE_REQUESTS", "1000"))


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.memory_child", *map(str, args)], cwd=common.ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait(child: subprocess.Popen, name: str) -> None:
    _, stderr = child.communicate(timeout=900)
    if child.returncode != 0:
        raise RuntimeError(f"memory child {name} failed:\n{stderr[-3000:]}")


def run(*args) -> None:
    wait(start(*args), args[0])


def main() -> None:
    common.environment()
    from chalicelib.storage.table import table_definition

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "table.json").write_text(json.dumps(table_definition(common.TABLE)))
        # Memory is what is measured here, not time: the cross-check runs alongside.
        service_child = start("service", tmp / "service.json", tmp / "items.jsonl", REQUESTS)
        remote = run_remote(tmp)
        wait(service_child, "service")
        service = json.loads((tmp / "service.json").read_text())
        run("baseline", tmp / "baseline.json", tmp / "items.jsonl", tmp / "table.json", service["stream_records"])
        baseline = json.loads((tmp / "baseline.json").read_text())
    common.write_result({
        "requests": REQUESTS, "service": service, "baseline": baseline,
        "service_share_mb": service["peak_rss_mb"] - baseline["peak_rss_mb"],
        "remote_requests": REMOTE_REQUESTS, "remote": remote,
    })


def run_remote(tmp: Path) -> dict:
    """The cross-check: the same process and mix, with DynamoDB (moto's
    server) in this process instead, over loopback: nothing to subtract."""
    import boto3
    from moto.server import ThreadedMotoServer

    from chalicelib.storage.table import create_table
    from devtools import moto_patches

    moto_patches.apply()
    common.tune_moto()
    common.quiet_logs()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        create_table(boto3.client("dynamodb", region_name=common.REGION, endpoint_url=endpoint), common.TABLE)
        run("remote", tmp / "remote.json", "-", REMOTE_REQUESTS, endpoint)
        return json.loads((tmp / "remote.json").read_text())
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
