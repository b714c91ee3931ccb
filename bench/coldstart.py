"""4. Cold start: wall time and peak memory of a fresh process importing
app.py and serving a first request (app.app(event, context) with an API
Gateway proxy event for GET /v1.0/chats/{id}), against a bare Chalice app
that imports boto3 and makes the same GetItem (bench/bare_app.py). Both talk
to one moto server on loopback, in this process, as a Lambda talks to
DynamoDB over the network, so neither child imports moto.

Variants, interleaved, several runs each, medians:
- ours: this venv as it is (PyJWT finds `cryptography`, a moto dependency,
  and imports it);
- ours-packaged: the same, but `cryptography` cannot be imported, as in the
  deployment zip (`make package` does not ship it);
- bare: the yardstick.

Then `python -X importtime` of one cold start of each, to see which imports
dominate and which chalicelib module pulls each one in.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench import common

RUNS = int(os.environ.get("BENCH_COLDSTART_RUNS", "7"))
VARIANTS = ("ours", "ours-packaged", "bare")


def child(variant: str, event_path: str, env: dict, importtime: bool = False) -> dict:
    command = [sys.executable] + (["-X", "importtime"] if importtime else []) + [
        "-m", "bench.coldstart_child", variant, event_path]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=common.ROOT, env=env, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{variant} cold start failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_seconds"] = wall
    if importtime:
        result["importtime"] = done.stderr
    return result


def parse_importtime(text: str) -> list[dict]:
    """`-X importtime` lines into a tree: [{name, self_us, cumulative_us, children}]."""
    pending: list[tuple[int, dict]] = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, self_us, cumulative_us, name = (part for part in [line[:12]] + line[12:].split("|"))
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        node = {"name": name.strip(), "self_us": int(self_us), "cumulative_us": int(cumulative_us), "children": []}
        children = []
        while pending and pending[-1][0] > depth:
            children.append(pending.pop()[1])
        node["children"] = children[::-1]
        pending.append((depth, node))
    return [node for _, node in pending]


def walk(nodes, parents=()):
    for node in nodes:
        yield node, parents
        yield from walk(node["children"], parents + (node["name"],))


def first_party(name: str) -> bool:
    return name == "app" or name.startswith(("chalicelib", "bench"))


def module_level_importers(package: str) -> list[str]:
    """Our modules that import `package` at module level (the import profile
    names only the first one)."""
    found = []
    for path in sorted((common.ROOT / "chalicelib").rglob("*.py")):
        lines = path.read_text().splitlines()
        if any(line.startswith((f"import {package}", f"from {package} ", f"from {package}.")) for line in lines):
            module = ".".join(path.relative_to(common.ROOT).with_suffix("").parts)
            found.append(module.removesuffix(".__init__"))
    return found


def analyse(text: str) -> dict:
    roots = parse_importtime(text)
    by_package: dict[str, int] = defaultdict(int)
    pulled_in = []
    for node, parents in walk(roots):
        by_package[node["name"].split(".")[0]] += node["self_us"]
        # A third-party import made directly by one of our modules: its whole
        # cost is that module's doing (modules are imported once).
        if parents and first_party(parents[-1]) and not first_party(node["name"]):
            if node["cumulative_us"] >= 3000:
                pulled_in.append({"by": parents[-1], "imports": node["name"], "ms": node["cumulative_us"] / 1000})
    ours = [{"module": node["name"], "ms": node["cumulative_us"] / 1000, "self_ms": node["self_us"] / 1000}
            for node, _ in walk(roots) if first_party(node["name"])]
    total = sum(node["cumulative_us"] for node in roots) / 1000
    packages = sorted(({"package": p, "ms": us / 1000} for p, us in by_package.items()), key=lambda r: -r["ms"])
    return {
        "total_ms": total,
        "packages": [p for p in packages if p["ms"] >= 2][:20],
        "pulled_in": sorted(pulled_in, key=lambda r: -r["ms"]),
        "first_party": sorted(ours, key=lambda r: -r["ms"])[:25],
        "first_party_self_ms": {r["module"]: r["self_ms"] for r in ours},
        "boto3_importers": module_level_importers("boto3"),
    }


def main() -> None:
    from moto.server import ThreadedMotoServer

    from devtools import moto_patches

    moto_patches.apply()
    common.tune_moto()
    common.quiet_logs()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        common.environment(endpoint=endpoint)
        import boto3

        from chalicelib.storage.table import create_table

        create_table(boto3.client("dynamodb", region_name=common.REGION, endpoint_url=endpoint), common.TABLE)
        from chalice.test import Client

        import app as chat_app

        common.quiet_chalice_test_client()
        with Client(chat_app.app) as client:
            customer_id = common.new_id()
            customer = common.Caller(client, customer_id)
            agents = [common.new_id() for _ in range(3)]
            chat = customer.ok("POST", "/v1.0/chats", {"type": "group", "owner_id": agents[0],
                                                       "participant_ids": agents, "name": "cold"})
        path = f"/v1.0/chats/{chat['id']}"
        events = {
            "ours": common.proxy_event("GET", "/v1.0/chats/{chat_id}", path, {"chat_id": chat["id"]}, None,
                                       {"authorization": f"Bearer {customer.token}"}, None),
            "bare": common.proxy_event("GET", "/v1.0/chats/{chat_id}", path, {"chat_id": chat["id"]}, None,
                                       {"x-customer-id": customer_id}, None),
        }
        events["ours-packaged"] = events["ours"]
        env = dict(os.environ)
        with tempfile.TemporaryDirectory() as tmp:
            paths = {}
            for variant, event in events.items():
                paths[variant] = str(Path(tmp) / f"{variant}.json")
                Path(paths[variant]).write_text(json.dumps(event))
            for variant in VARIANTS:  # warm the OS page cache and the .pyc files once
                child(variant, paths[variant], env)
            runs: dict[str, list] = {variant: [] for variant in VARIANTS}
            for i in range(RUNS):
                order = VARIANTS[i % 3:] + VARIANTS[:i % 3]
                for variant in order:
                    result = child(variant, paths[variant], env)
                    assert result["status"] == 200, result
                    runs[variant].append(result)
            profiles = {variant: analyse(child(variant, paths[variant], env, importtime=True)["importtime"])
                        for variant in ("ours", "bare")}
    finally:
        server.stop()

    def med(variant, key):
        return common.median([r[key] for r in runs[variant]])

    def least(variant, key):
        return min(r[key] for r in runs[variant])

    summary = {
        variant: {key: med(variant, key) for key in ("import_seconds", "first_request_seconds", "total_seconds",
                                                     "import_cpu_seconds", "first_request_cpu_seconds",
                                                     "total_cpu_seconds",
                                                     "process_wall_seconds", "peak_rss_mb", "ru_maxrss_mb",
                                                     "modules")}
        for variant in VARIANTS
    }
    for variant in VARIANTS:  # the least of the runs: what the machine's other work did not add to
        summary[variant].update({f"min_{key}": least(variant, key) for key in ("total_seconds", "total_cpu_seconds")})
    common.write_result({"runs": RUNS, "summary": summary, "all": runs, "profiles": profiles})


if __name__ == "__main__":
    sys.exit(main())
