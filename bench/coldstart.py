"""Cold start: a fresh process of this venv imports the app and serves one
request (`GET /v1.0/chats/{id}` as an API Gateway proxy event to
`app.app(event, context)`: what Lambda bills as init plus the first
invocation), against a bare Chalice + boto3 app making the same GetItem
(bench/bare_app.py). DynamoDB is a moto server in this process, on loopback.

RUNS of each, side by side (ours, bare, ours, ...) after one warm-up
each, so that the machine's load falls on both alike; medians and their
ratio. Then one `python -X importtime` of each: the packages ours imports
that the bare app does not, by their own import time.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import common

RUNS = int(os.environ.get("BENCH_COLDSTART_RUNS", "7"))
KEYS = ("import_s", "total_s", "cpu_s", "process_s")
APPS = {"ours": "app", "bare": "bench.bare_app"}
CHILD = """
import json, sys, time
event = json.load(open(sys.argv[1]))
started, started_cpu = time.perf_counter(), time.process_time()
from {module} import app
imported = time.perf_counter()
status = app(event, None)["statusCode"]
print(json.dumps({{"import_s": imported - started, "total_s": time.perf_counter() - started,
                  "cpu_s": time.process_time() - started_cpu, "status": status}}))
"""


def child(name: str, event_path: str, *flags: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-c", CHILD.format(module=APPS[name]), event_path],
                          cwd=common.ROOT, capture_output=True, text=True, timeout=120, check=True, env=env)


def cold_start(name: str, event_path: str, env: dict | None = None) -> dict:
    started = time.perf_counter()
    result = json.loads(child(name, event_path, env=env).stdout.strip().splitlines()[-1])
    assert result["status"] == 200, result
    return {**result, "process_s": time.perf_counter() - started}


def own_times(name: str, event_path: str) -> dict[str, int]:
    """Each module's own import time in microseconds (-X importtime)."""
    times = {}
    for line in child(name, event_path, "-X", "importtime").stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if line.startswith("import time:") and parts[0].strip().isdigit():
            times[parts[2].strip()] = int(parts[0])
    return times


def proxy_event(path: str, chat_id: str, headers: dict) -> dict:
    return {"resource": "/v1.0/chats/{chat_id}", "path": path, "httpMethod": "GET", "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": {"chat_id": chat_id}, "stageVariables": None,
            "requestContext": {"resourcePath": "/v1.0/chats/{chat_id}", "httpMethod": "GET", "path": f"/api{path}",
                               "stage": "api", "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "127.0.0.1"}},
            "body": None, "isBase64Encoded": False}


def main() -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        common.environment(CHAT_DYNAMODB_ENDPOINT=f"http://{host}:{port}", PYTHONPATH=str(common.ROOT))
        import boto3

        from chalicelib.storage.table import create_table

        create_table(boto3.client("dynamodb", region_name=common.REGION,
                                  endpoint_url=os.environ["CHAT_DYNAMODB_ENDPOINT"]), common.TABLE)
        customer_id, agents = common.new_id(), [common.new_id() for _ in range(3)]
        with common.test_client() as client:
            admin = common.Caller(client, customer_id)
            chat = admin.ok("POST", "/v1.0/chats", {"type": "group", "owner_id": agents[0], "participant_ids": agents})
        path = f"/v1.0/chats/{chat['id']}"
        events = {"ours": proxy_event(path, chat["id"], {"authorization": f"Bearer {admin.token}"}),
                  "bare": proxy_event(path, chat["id"], {"x-customer-id": customer_id})}
        with tempfile.TemporaryDirectory() as tmp:
            paths = {name: Path(tmp) / f"{name}.json" for name in APPS}
            for name, event_path in paths.items():
                event_path.write_text(json.dumps(events[name]))
                # warm the page cache, and write the .pyc files even where PYTHONDONTWRITEBYTECODE is set:
                # else ours compiles its 28 modules in every run, and the bare app its one
                cold_start(name, event_path, env={k: v for k, v in os.environ.items()
                                                  if k != "PYTHONDONTWRITEBYTECODE"})
            runs = {name: [] for name in APPS}
            for _ in range(RUNS):
                for name in APPS:
                    runs[name].append(cold_start(name, paths[name]))
            ours, bare = own_times("ours", paths["ours"]), own_times("bare", paths["bare"])
    finally:
        server.stop()
    medians = {name: {key: common.median([r[key] for r in results]) for key in KEYS}
               for name, results in runs.items()}
    extra: dict[str, int] = {}
    for module, micros in ours.items():
        if module not in bare:
            extra[module.split(".")[0]] = extra.get(module.split(".")[0], 0) + micros
    common.write_result({
        "runs": RUNS, "all": runs, "medians": medians, "load": os.getloadavg(),
        "ratio": {key: medians["ours"][key] / medians["bare"][key] for key in KEYS},
        "extra_packages_ms": {k: v / 1000 for k, v in sorted(extra.items(), key=lambda kv: -kv[1])[:10]},
        "modules": {"ours": len(ours), "bare": len(bare)},
    })


if __name__ == "__main__":
    main()
