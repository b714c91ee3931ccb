"""bench/results.json (what run_all.py measured) to bench/RESULTS.md."""

import math

COLD_TARGET = 1.3
WARM_TARGET = 1.5
MEMORY_TARGET_MB = 128


def num(value, digits=1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int) or float(value).is_integer() and digits <= 1 and abs(value) >= 10:
        return f"{int(round(value)):,}"
    return f"{value:,.{digits}f}"


def ratio(ours, floor, digits=2) -> str:
    if not floor:
        return "—" if not ours else "n/a (floor 0)"
    return f"{ours / floor:.{digits}f}"


def ops(operations: dict) -> str:
    if not operations:
        return "none"
    return ", ".join(f"{count} {name}" for name, count in sorted(operations.items()))


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def ok(condition: bool) -> str:
    return "meets" if condition else "**above**"


def section_failed(name: str, result: dict) -> list[str]:
    return [f"**This measurement failed** after {result.get('seconds', 0):.0f} s:", "", "```",
            (result.get("error") or "")[-2500:], "```", ""]


# ---- headline --------------------------------------------------------------------

def headline(r: dict) -> tuple[list[str], list[str]]:
    """(table lines, findings above target)."""
    rows, above = [], []
    if ok_data(r, "cost"):
        cost = r["cost"]["data"]["rows"]
        at_floor = [x for x in cost if x["requests"] <= x["floor_requests"]]
        worst = max(cost, key=lambda x: (x["requests"] / x["floor_requests"]) if x["floor_requests"] else 0)
        rows.append(["1. DynamoDB requests per operation (every endpoint and stream record)",
                     f"{len(at_floor)} of {len(cost)} at the floor; worst {worst['endpoint']} ({worst['caller']}): "
                     f"{worst['requests']} requests", f"floor: {worst['floor_requests']}",
                     ratio(worst["requests"], worst["floor_requests"]), "see §1"])
        cap = [(x, (x["rcu"] + x["wcu"]) / (x["floor_rcu"] + x["floor_wcu"]))
               for x in cost if x["floor_rcu"] + x["floor_wcu"]]
        worst_cap = max(cap, key=lambda p: p[1])
        rows.append(["1. Consumed capacity (RCU + WCU) per operation",
                     f"worst {worst_cap[0]['endpoint']} ({worst_cap[0]['caller']}): "
                     f"{num(worst_cap[0]['rcu'] + worst_cap[0]['wcu'], 1)}",
                     f"floor: {num(worst_cap[0]['floor_rcu'] + worst_cap[0]['floor_wcu'], 1)}",
                     f"{worst_cap[1]:.2f}", "see §1"])
        above += cost_findings(cost)
    if ok_data(r, "growth"):
        sizes = r["growth"]["data"]["sizes"]
        small, large = sizes[0], sizes[-1]
        grows = [a["endpoint"] for a, b in zip(small["rows"], large["rows"], strict=True)
                 if (b["requests"], b["items_read"]) != (a["requests"], a["items_read"])]
        most = max(b["items_read"] / a["items_read"] for a, b in zip(small["rows"], large["rows"], strict=True))
        rows.append([f"2. Requests and items read per page, {num(large['items'])} vs {num(small['items'])} items",
                     "no growth" if not grows else f"grows: {', '.join(grows)}", "must not grow",
                     f"{most:.2f}", ok(not grows)])
        if grows:
            above.append(f"- Cost grows with the table for: {', '.join(grows)} (§2).")
    if ok_data(r, "fanout"):
        for size in r["fanout"]["data"]["sizes"]:
            per = size["per_message"]
            requests = size.get("requests_dynamodb", per["requests"])
            moto_note = "" if requests == per["requests"] else f" (moto: {per['requests']}, see §3)"
            rows.append([f"3. Fan-out requests per message, {num(size['participants'])} participants",
                         f"{requests}: {fanout_ops(size)}{moto_note}", f"{size['floor_requests']} (1 + ceil(N/25))",
                         ratio(requests, size["floor_requests"]), ok(requests <= size["floor_requests"])])
        big = r["fanout"]["data"]["sizes"][-1]
        if big.get("requests_dynamodb", big["per_message"]["requests"]) > big["floor_requests"]:
            above.append(fanout_finding(big))
    if ok_data(r, "coldstart"):
        s = r["coldstart"]["data"]["summary"]
        for variant in ("ours", "ours-packaged"):
            value = s[variant]["total_seconds"] / s["bare"]["total_seconds"]
            label = "as installed in .venv" if variant == "ours" else "as packaged (no `cryptography`)"
            rows.append([f"4. Cold start, import + first request, {label}",
                         f"{num(s[variant]['total_seconds'] * 1000, 0)} ms vs "
                         f"{num(s['bare']['total_seconds'] * 1000, 0)} ms bare", f"ratio ≤ {COLD_TARGET}",
                         f"{value:.2f}", ok(value <= COLD_TARGET)])
        mem = s["ours-packaged"]["peak_rss_mb"] / s["bare"]["peak_rss_mb"]
        rows.append(["4. Cold start peak RSS, as packaged", f"{num(s['ours-packaged']['peak_rss_mb'])} MB vs "
                     f"{num(s['bare']['peak_rss_mb'])} MB bare", "(no target)", f"{mem:.2f}", "—"])
        worst = max(s["ours"]["total_seconds"], s["ours-packaged"]["total_seconds"]) / s["bare"]["total_seconds"]
        if worst > COLD_TARGET:
            above.append(cold_finding(r))
    if ok_data(r, "warm"):
        warm_rows = r["warm"]["data"]["rows"]
        for row in warm_rows:
            rows.append([f"5. Warm overhead, {row['operation']} (Chalice test client)",
                         f"{num(row['ours_per_second'], 0)} req/s vs {num(row['plain_per_second'], 0)} plain",
                         f"ratio ≤ {WARM_TARGET}", f"{row['ratio']:.2f}", ok(row["ratio"] <= WARM_TARGET)])
        if any(row["ratio"] > WARM_TARGET for row in warm_rows):
            above.append("- Warm overhead above 1.5 for: " + ", ".join(
                f"{row['operation']} ({row['ratio']:.2f})" for row in warm_rows if row["ratio"] > WARM_TARGET)
                + " (§5).")
    if ok_data(r, "load"):
        d = r["load"]["data"]
        rows.append(["6. Local server, 8 clients × 30 s", f"{num(d['requests_per_second'])} req/s, "
                     f"p50 {num(d['p50_ms'], 0)} ms, p99 {num(d['p99_ms'], 0)} ms", "(no target)", "—", "—"])
        rows.append(["6. Errors; copies missing at the end", f"{d['errors']}; {d['copies_missing']} of "
                     f"{num(d['copies_expected'])}", "0; 0", "—", ok(d["errors"] == 0 and d["copies_missing"] == 0)])
        if d["errors"] or d["copies_missing"]:
            above.append(f"- The local server under load: {d['errors']} errors, {d['copies_missing']} copies missing"
                         " at the deadline (§6).")
    if ok_data(r, "memory"):
        d = r["memory"]["data"]
        share = d["service_share_mb"]
        rows.append([f"7. Memory: the service's share of one process, {num(d['requests'])} requests",
                     f"{num(share)} MB (peak {num(d['service']['peak_rss_mb'])} MB − moto baseline "
                     f"{num(d['baseline']['peak_rss_mb'])} MB)", f"< {MEMORY_TARGET_MB} MB",
                     f"{share / MEMORY_TARGET_MB:.2f}", ok(share < MEMORY_TARGET_MB)])
        remote = d.get("remote")
        if remote:
            rows.append([f"7. Memory, cross-check without moto in the process, {num(d['remote_requests'])} requests",
                         f"{num(remote['peak_rss_mb'])} MB peak", f"< {MEMORY_TARGET_MB} MB",
                         f"{remote['peak_rss_mb'] / MEMORY_TARGET_MB:.2f}",
                         ok(remote["peak_rss_mb"] < MEMORY_TARGET_MB)])
        if share >= MEMORY_TARGET_MB or (remote and remote["peak_rss_mb"] >= MEMORY_TARGET_MB):
            above.append("- Memory at or above 128 MB (§7).")
    if ok_data(r, "large_group"):
        d = r["large_group"]["data"]
        t = d["targets"]
        size = num(d["size"])
        for key, label, unit in (
                ("create_seconds", f"8. Local server: create a {size}-agent group", "s"),
                ("all_copies_seconds", "8. Every copy of one message to it visible, after the send", "s"),
                ("one_to_one_seconds", "8. Another customer's 1:1 message meanwhile, copied after its send", "s"),
                ("rss_mb", "8. Server RSS at the end (its moto included)", "MB")):
            value = d.get(key)
            shown = "not within the deadline" if value is None else f"{num(value, 0 if unit == 'MB' else 1)} {unit}"
            met = value is not None and value <= t[key]
            rows.append([label, shown, f"≤ {num(t[key], 0)} {unit}",
                         "—" if value is None else f"{value / t[key]:.2f}", ok(met)])
            if not met:
                above.append(f"- {label[3:]}: {shown} against ≤ {num(t[key], 0)} {unit} (§8).")
        if any(d.get(key) is None or d[key] > t[key] for key in ("create_seconds", "all_copies_seconds")):
            above.append(
                "- Why (§8): the requests are at their floor (§3); the time is moto's and one process's. The fan-out's "
                "1,000 conditional chatroom updates and 1,000 conditional puts cost the embedded moto about 8 s of "
                "CPU (it parses and validates each update's expressions), the create's 2,000 items and their 2,000 "
                "stream records some more, and the API, the 4 stream lanes and moto share one interpreter lock, on 2 "
                "cores shared with the bench's client (and with whatever else the machine runs: see the load).")
    lines = table(["figure", "measured", "floor / target", "ratio", "verdict"], rows)
    return lines, above


def ok_data(r: dict, name: str) -> bool:
    return name in r and not r[name].get("failed")


def cost_findings(cost: list[dict]) -> list[str]:
    extra_requests = [x for x in cost if x["requests"] > x["floor_requests"]]
    extra_wcu = [x for x in cost if x["floor_wcu"] and x["wcu"] > x["floor_wcu"] + 1e-9]
    found = []
    if extra_requests:
        found.append(f"- {len(extra_requests)} operations make more DynamoDB requests than their floor (§1):")
        found += [f"  - {x['endpoint']} ({x['caller']}): {ops(x['operations'])} against "
                  f"{ops(x['floor_operations'])}" for x in extra_requests]
    if extra_wcu:
        found.append("- Operations that write more capacity than their floor, by writing in a transaction (2× WCU) "
                     "what does not need one (§1):")
        found += [f"  - {x['endpoint']} ({x['caller']}): {num(x['wcu'], 1)} WCU against {num(x['floor_wcu'], 1)}"
                  for x in extra_wcu]
    return found


def fanout_ops(size: dict) -> str:
    operations = dict(size["per_message"]["operations"])
    if "query_pages_dynamodb" in size:
        operations["Query"] = size["query_pages_dynamodb"]
    return ops(operations)


def fanout_finding(big: dict) -> str:
    pages = big.get("query_pages_dynamodb", big["per_message"]["operations"].get("Query", 0))
    return (f"- Fan-out into {num(big['participants'])} participants: "
            f"{big.get('requests_dynamodb', big['per_message']['requests'])} requests per message against a floor "
            f"of {big['floor_requests']}: the Query for the chat's chatrooms takes {pages} pages of 1 MB "
            f"({num(big.get('query_bytes', 0) / 1024, 0)} KB of index entries; a chatroom of this chat is "
            f"{num(big['chatroom_bytes'] / 1024)} KB, as it holds its chat's participant ids) (§3).")


def cold_finding(r: dict) -> str:
    data = r["coldstart"]["data"]
    s, profile = data["summary"], data["profiles"]["ours"]
    bare_profile = data["profiles"]["bare"]
    first = (s["ours-packaged"]["first_request_seconds"] - s["bare"]["first_request_seconds"]) * 1000
    pulled = "; ".join(f"`{p['by']}` → `{p['imports']}` {num(p['ms'])} ms" for p in profile["pulled_in"][:6])
    return (f"- Cold start: {s['ours-packaged']['total_seconds'] / s['bare']['total_seconds']:.2f} as packaged, "
            f"{s['ours']['total_seconds'] / s['bare']['total_seconds']:.2f} in the venv (target {COLD_TARGET}). "
            f"Imports take {num(profile['total_ms'], 0)} ms against {num(bare_profile['total_ms'], 0)} ms; the "
            f"heaviest third-party imports and the module of ours that pulls each in: {pulled}. The first request "
            f"costs {num(first, 0)} ms more than the bare app's, which made its one boto3 client while importing: "
            "PynamoDB makes its botocore session and client on first use, one per model class (§4, §7).")


# ---- sections ---------------------------------------------------------------------

def section_cost(r: dict) -> list[str]:
    rows = []
    for x in r["cost"]["data"]["rows"]:
        rows.append([x["endpoint"], x["caller"], ops(x["operations"]), num(x["rcu"], 1),
                     f"{num(x['wcu'], 1)} ({num(x['wcu_index'], 1)})", ops(x["floor_operations"]),
                     num(x["floor_rcu"], 1), num(x["floor_wcu"], 1), ratio(x["requests"], x["floor_requests"]),
                     ratio(x["rcu"], x["floor_rcu"]), ratio(x["wcu"], x["floor_wcu"]), x["note"]])
    lines = [
        "Each endpoint once, through Chalice's test client against moto in the process (a chat of 3 with 10 "
        "messages, 10 chats to list); then each kind of stream record that followed, handed alone to "
        "`app.on_table_change`. Capacity is computed from the item images (see Method), not taken from moto. "
        "Floors: the least a correct implementation of the same access pattern and contract does; writes are "
        "counted as the items that must change, transactional (2×) only where several items must change "
        "together; reads of one item strongly consistent (read-your-writes), pages eventually consistent "
        "(index). Ratio = ours / floor.", "",
    ]
    return lines + table(["endpoint", "caller", "DynamoDB requests", "RCU", "WCU (of which indexes)",
                          "floor requests", "floor RCU", "floor WCU", "ratio req", "ratio RCU", "ratio WCU",
                          "floor, and why"], rows)


def section_growth(r: dict) -> list[str]:
    sizes = r["growth"]["data"]["sizes"]
    small, large = sizes[0], sizes[-1]
    head = ["endpoint", "caller"]
    for size in (small, large):
        head += [f"{num(size['items'])} items: requests", "items read", "RCU"]
    head += ["grows?"]
    rows = []
    for a, b in zip(small["rows"], large["rows"], strict=True):
        same = (a["requests"], a["items_read"], a["rcu"]) == (b["requests"], b["items_read"], b["rcu"])
        rows.append([a["endpoint"], a["caller"], f"{a['requests']} ({ops(a['operations'])})", a["items_read"],
                     num(a["rcu"], 1), f"{b['requests']} ({ops(b['operations'])})", b["items_read"], num(b["rcu"], 1),
                     "no" if same else "**yes**"])
    lines = [
        f"Tables of {num(small['items'])} and {num(large['items'])} items; each list reads a partition that holds "
        f"3/16 of the table ({num(small['partition_size'])} and {num(large['partition_size'])} items), the rest "
        "belongs to other customers. Pages are the default 100 items (one more is read to know whether another "
        "page follows); \"deep\" starts from a token in the middle of the list. The bulk items were cloned from "
        "items the API wrote and put straight into moto's backend "
        f"({num(large['load_items_per_second'], 0)} items/s for the large table).", "",
    ]
    lines += table(head, rows)
    moto_small = sum(x["seconds"] for x in small["rows"] if "list" in x["endpoint"] or "?" in x["endpoint"])
    moto_large = sum(x["seconds"] for x in large["rows"] if "list" in x["endpoint"] or "?" in x["endpoint"])
    lines += [f"Time is no measure here: moto answers a Query by reading every item of the table (the lists above "
              f"took {num(moto_small, 1)} s at {num(small['items'])} items and {num(moto_large, 1)} s at "
              f"{num(large['items'])}); DynamoDB reads one partition.", ""]
    return lines


def section_fanout(r: dict) -> list[str]:
    rows = []
    for s in r["fanout"]["data"]["sizes"]:
        per = s["per_message"]
        requests = s.get("requests_dynamodb", per["requests"])
        moto = "" if requests == per["requests"] else f" (moto: {ops(per['operations'])})"
        rows.append([num(s["participants"]), num(s["chatrooms"]), num(s["chatroom_bytes"] / 1024, 1),
                     f"{requests}: {fanout_ops(s)}{moto}", s["floor_requests"], ratio(requests, s["floor_requests"]),
                     num(s.get("rcu_dynamodb", per["rcu"]), 1), num(per["wcu"], 0), num(s["floor_wcu"], 0),
                     ratio(per["wcu"], s["floor_wcu"]), num(s["copies_per_second"], 0),
                     num(s["plain_items_per_second"], 0), num(s["create_seconds"], 2)])
    lines = [
        "A chat of N agents created through the API; messages sent with `POST /v1.0/chatmessages` (no sender's "
        "chatroom, so every chatroom gets a copy); their INSERT records read from moto's stream with the "
        "dynamodbstreams API and handed to `app.on_table_change` one message at a time. Requests and capacity: the "
        "first message (metered). Copies/s: the other messages, nothing patched, in this process (moto's work "
        "included); for scale, the same copy items written again with plain boto3 `BatchWriteItem` on the same "
        "moto. Floor: 1 Query + ceil(N/25) batch writes; floor WCU: the same copies as plain (not transactional) "
        "writes. Query pages: moto cuts a Query's pages at 1 MB of whole items, before it applies the index's "
        "projection; DynamoDB cuts them at 1 MB of the index entries it reads, so requests and RCU are given as "
        "DynamoDB would page (the bytes read are the ones moto returned), and moto's own count in brackets.", "",
    ]
    return lines + table(["participants", "chatrooms", "chatroom item KB", "requests per message", "floor",
                          "ratio", "RCU", "WCU", "floor WCU", "WCU ratio", "copies/s (ours)",
                          "items/s (plain BatchWriteItem)", "create chat s"], rows)


def section_coldstart(r: dict) -> list[str]:
    d = r["coldstart"]["data"]
    s = d["summary"]
    rows = []
    for variant in ("ours", "ours-packaged", "bare"):
        v = s[variant]
        rows.append([variant, num(v["import_seconds"] * 1000, 0), num(v["first_request_seconds"] * 1000, 0),
                     f"**{num(v['total_seconds'] * 1000, 0)}**", num(v["min_total_seconds"] * 1000, 0),
                     num(v["total_cpu_seconds"] * 1000, 0), num(v["process_wall_seconds"] * 1000, 0),
                     num(v["peak_rss_mb"], 1), v["modules"]])
    bare = s["bare"]
    ratios = []
    for variant in ("ours", "ours-packaged"):
        v = s[variant]
        ratios.append([f"{variant} / bare", f"**{ratio(v['total_seconds'], bare['total_seconds'])}**",
                       ratio(v["min_total_seconds"], bare["min_total_seconds"]),
                       ratio(v["total_cpu_seconds"], bare["total_cpu_seconds"]),
                       ratio(v["process_wall_seconds"], bare["process_wall_seconds"]),
                       ratio(v["peak_rss_mb"], bare["peak_rss_mb"]), f"≤ {COLD_TARGET} (time)"])
    lines = [
        f"Fresh processes, {d['runs']} runs of each variant interleaved (after one warm-up run each, so the "
        "OS caches the files), medians. \"Import + first request\" is measured inside the process (what Lambda "
        "bills as init plus the first invocation); \"process wall\" adds interpreter start and exit. The request is "
        "`GET /v1.0/chats/{id}` as an API Gateway proxy event to `app.app(event, context)`; DynamoDB is a moto "
        "server in the parent process, over loopback. Peak RSS is the child's VmHWM. \"ours-packaged\" cannot "
        "import `cryptography`, which is in this venv (for moto) but not in the deployment zip; PyJWT imports it "
        "when present. The verdict uses the medians of wall time, as the issue asks; the least of the runs and "
        "the CPU time are there because other work on this machine adds to wall time (see the load average).", "",
    ]
    lines += table(["variant", "import ms", "first request ms", "import + first request ms (median)",
                    "same, least of the runs", "same, CPU ms", "process wall ms", "peak RSS MB", "modules loaded"],
                   rows)
    lines += table(["ratio", "import + first request (median)", "least of the runs", "CPU time", "process wall",
                    "peak RSS", "target"], ratios)
    ours, bare_p = d["profiles"]["ours"], d["profiles"]["bare"]
    lines += [f"`python -X importtime`, one cold start each: imports take {num(ours['total_ms'], 0)} ms (ours, in "
              f"the venv) and {num(bare_p['total_ms'], 0)} ms (bare). Self time by package:", ""]
    bare_by = {p["package"]: p["ms"] for p in bare_p["packages"]}
    lines += table(["package", "ours ms", "bare ms"],
                   [[p["package"], num(p["ms"], 1), num(bare_by.get(p["package"]), 1)] for p in ours["packages"][:14]])
    lines += ["Third-party imports made directly by our modules (cumulative, the package's first import), i.e. "
              "what each of our modules costs in other people's code:", ""]
    lines += table(["our module", "imports", "ms"], [[f"`{p['by']}`", f"`{p['imports']}`", num(p["ms"], 1)]
                                                    for p in ours["pulled_in"][:14]])
    lines += ["What could be made lazy:", ""] + lazy_suggestions(ours) + [""]
    lines += ["Our own modules, cumulative (including what they import):", ""]
    lines += table(["module", "cumulative ms", "self ms"], [[f"`{m['module']}`", num(m["ms"], 1), num(m["self_ms"], 1)]
                                                           for m in ours["first_party"][:16]])
    return lines


def code(names) -> str:
    return ", ".join(f"`{name}`" for name in names)


def lazy_suggestions(profile: dict) -> list[str]:
    """From the import profile: what a GET does not need at import time."""
    found = []
    own = profile.get("first_party_self_ms", {})
    NOT_FOR_REST = ("chalicelib.stream", "chalicelib.websocket", "chalicelib.services.fanout",  # noqa: N806
                    "chalicelib.services.delivery", "chalicelib.services.events", "chalicelib.services.connections")
    not_for_rest = sorted(name for name in own if name.startswith(NOT_FOR_REST))
    if not_for_rest:
        found.append(f"- `app.py` imports {code(not_for_rest)} at module level "
                     f"({num(sum(own[n] for n in not_for_rest), 0)} ms of their own, and the first import of "
                     "whatever they import); the REST function never runs them (the stream and websocket functions "
                     "do): import them inside `on_table_change` and the websocket handlers.")
    pulled = profile["pulled_in"]
    boto3 = [p for p in pulled if p["imports"].split(".")[0] == "boto3"]
    if boto3:
        importers = [m for m in profile.get("boto3_importers", []) if m in own] or [p["by"] for p in boto3]
        found.append(f"- {code(importers)} {'imports' if len(importers) == 1 else 'import'} `boto3` "
                     f"({num(max(p['ms'] for p in boto3), 0)} ms with `s3transfer`) at module level; the bare app "
                     "imports it too, but our REST requests need it only when the JWT secret comes from SSM or "
                     "Secrets Manager (once per container) or an event goes to EventBridge or API Gateway: import "
                     "it inside those functions, or make those clients from botocore's session, which PynamoDB "
                     "loads anyway.")
    jwt = [p for p in pulled if p["imports"].split(".")[0] == "jwt"]
    if jwt:
        found.append(f"- {code(p['by'] for p in jwt)} imports PyJWT ({num(jwt[0]['ms'], 0)} ms), which "
                     "imports `cryptography` when it is installed, for algorithms HS256 does not use; the "
                     "deployment zip has no `cryptography`, so \"ours-packaged\" is the figure Lambda sees.")
    pydantic = [p for p in pulled if p["imports"].split(".")[0] in ("pydantic", "annotated_types")]
    if pydantic:
        by = sorted({p["by"] for p in pydantic})
        schemas = sum(ms for name, ms in own.items() if name.startswith("chalicelib.schemas"))
        found.append(f"- pydantic is first imported by {code(by)} "
                     f"({num(sum(p['ms'] for p in pydantic), 0)} ms), and our models are built at import "
                     f"({num(schemas, 0)} ms of `chalicelib.schemas.*` self time): `ConfigDict(defer_build=True)` "
                     "builds each validator on first use; the renderer needs only the resources' field names, "
                     "which can be plain tuples, so a GET need not import pydantic at all if the request models "
                     "are imported where bodies are parsed.")
    return found or ["- Nothing stands out."]


def section_warm(r: dict) -> list[str]:
    d = r["warm"]["data"]
    rows = []
    for x in d["rows"]:
        rows.append([x["operation"], ", ".join(x["dynamodb_calls"]), num(x["ours_per_second"], 0),
                     num(x["direct_per_second"], 0), num(x["plain_per_second"], 0), num(x["ours_ms"], 2),
                     num(x["plain_ms"], 2), num(x["ours_ms"] - x["plain_ms"], 2), f"{x['ratio']:.2f}",
                     f"{x['direct_ratio']:.2f}", f"≤ {WARM_TARGET}"])
    lines = [
        f"{d['rounds']} rounds of {d['per_round']} requests of each kind, the three sides interleaved in every round, "
        "in one process with moto in it. get = `GET /v1.0/chats/{id}`, list = `GET "
        f"/v1.0/chatroommessages?chatroom_id=…&page_size={d['page_size']}` (a chatroom of 50), send = `POST "
        "/v1.0/chatmessages`, all as a plain agent; \"plain\" makes the very same DynamoDB calls (checked) with a "
        "boto3 client; \"Lambda entry\" is `app.app(event, context)` without the test client. Ratio = our time per "
        "request / plain time per request; both include moto's own work and botocore's parsing of the response "
        "(the list's 21 items dominate it), so the overhead column is the figure that carries over to AWS.", "",
    ]
    return lines + table(["operation", "DynamoDB calls", "ours req/s (test client)", "ours req/s (Lambda entry)",
                          "plain boto3 req/s", "ours ms", "plain ms", "overhead ms", "ratio", "ratio (Lambda entry)",
                          "target"], rows)


def section_load(r: dict) -> list[str]:
    d = r["load"]["data"]
    rows = [
        ["clients × duration", f"{d['clients']} × {num(d['seconds'], 1)} s"],
        ["requests", num(d["requests"])],
        ["requests/s", num(d["requests_per_second"], 1)],
        ["latency p50 / p99, all", f"{num(d['p50_ms'], 0)} / {num(d['p99_ms'], 0)} ms"],
    ]
    for kind, k in d["by_kind"].items():
        rows.append([f"latency p50 / p99, {kind} ({k['requests']} requests)",
                     f"{num(k['p50_ms'], 0)} / {num(k['p99_ms'], 0)} ms"])
    rows += [
        ["errors (non-200 or failed)", d["errors"]],
        ["messages sent", num(d["messages_sent"])],
        ["copies expected (every message in every chatroom of its chat)", num(d["copies_expected"])],
        ["copies missing at the end", d["copies_missing"]],
        ["fan-out backlog: time until every copy was in place, after the load stopped",
         f"{num(d['converge_seconds'], 1)} s"],
        ["server start (to first answer)", f"{num(d['startup_seconds'], 1)} s"],
        ["server peak RSS (its moto included)", f"{num(d['server_peak_rss_mb'], 0)} MB"],
        ["ERROR lines in the server's log", d["server_errors_logged"]],
    ]
    lines = [
        "`python -m devtools.run` as a subprocess on free ports, with its own embedded moto server, stream "
        "poller and Chalice local server, exactly as `make run` starts it (of the bench's moto speed-ups, only "
        "the first is `make run`'s own too: see Method). 8 threads, one agent each, one keep-alive connection "
        "each; 50% `POST /v1.0/chatroommessages`, 50% `GET /v1.0/chatroommessages?page_size=20`, into or from "
        "one of the agent's two chatrooms (a group chat of 8, and a 1:1 chat). Then, for every message sent, the "
        "chatrooms its copies are in are read from the server's own DynamoDB (its embedded moto, on a port the "
        "bench chose: one Query of the relation index per message), again every half second until every copy is "
        "in every chatroom of its chat or 180 s pass. The load generator shares the machine's 2 cores with the "
        "server.", "",
    ]
    lines += table(["figure", "value"], rows)
    if d.get("error_samples"):
        lines += ["Error samples:", "", "```", *d["error_samples"], "```", ""]
    return lines


def section_memory(r: dict) -> list[str]:
    d = r["memory"]["data"]
    s, b, remote = d["service"], d["baseline"], d.get("remote")
    rows = [
        ["service + moto: after importing app.py", num(s.get("rss_imported_mb")), ""],
        ["service + moto: moto started, table created", num(s["rss_ready_mb"]), ""],
        [f"service + moto: peak over {num(s['requests'])} requests", num(s["peak_rss_mb"]),
         f"{num(s['seconds'], 1)} s, {num(s['items'])} items, {num(s['stream_records'])} stream records at the end"],
        ["baseline, moto alone: started", num(b["rss_ready_mb"]), ""],
        ["baseline, moto alone: peak holding the same items and stream records", num(b["peak_rss_mb"]),
         "filled with BatchWriteItem through moto's request path, then 200 GetItems"],
        ["**service's share** (difference of the peaks)", f"**{num(d['service_share_mb'])}**",
         f"target < {MEMORY_TARGET_MB} MB"],
    ]
    if remote:
        checkpoints = ", ".join(f"{k}: {num(v)}" for k, v in remote["checkpoints"].items())
        rows += [
            ["cross-check, no moto in the process: after importing app.py", num(remote["rss_imported_mb"]), ""],
            [f"cross-check: peak over {num(remote['requests'])} requests", f"**{num(remote['peak_rss_mb'])}**",
             f"RSS after n requests: {checkpoints}"],
        ]
        clients = remote.get("dynamodb_clients")
        extra = remote.get("one_more_client") or {}
        rows.append(["botocore DynamoDB clients the service made", clients if clients is not None else "n/a",
                     f"one more session + client, measured in the same process: {num(extra.get('ms'), 0)} ms, "
                     f"{num(extra.get('mb'), 1)} MB"])
    lines = [
        "One process, `app.app(event, context)` with API Gateway proxy events, moto in the process; the mix per 100 "
        "requests: 30 list a chatroom's messages (page of 20), 25 send a chatroommessage, 10 get a chatroommessage, "
        "10 list own chatrooms, 8 get a chat, 5 send a chatmessage, 5 list chats, 4 get a chatroom, 2 rename a "
        "chatroom, 1 create a chat (12 agents, 4 group chats to start with). The stream handler is another "
        "function and does not run here. RSS in MB (VmRSS / VmHWM).", "",
    ]
    return lines + table(["process", "RSS MB", "note"], rows)


def section_large_group(r: dict) -> list[str]:
    d = r["large_group"]["data"]
    rows = [
        [f"create a {num(d['size'])}-agent group (`POST /v1.0/chats`)", f"{num(d['create_seconds'], 1)} s"],
        ["one message to it (sent right after): first copy visible", f"{num(d.get('first_copy_seconds'), 1)} s"],
        ["every copy visible", f"{num(d['all_copies_seconds'], 1)} s"],
        [f"another customer's 1:1 message, sent {num(d['one_to_one_sent_after_seconds'], 1)} s after the large one: "
         "both copies visible", f"{num(d['one_to_one_seconds'], 2)} s after its send"],
        ["copies of the large message visible at that moment", f"{num(d['large_copies_when_one_to_one_arrived'])}"
                                                                f" of {num(d['size'])}"],
        ["remove one participant", f"{num(d['remove_seconds'], 2)} s"],
        ["server RSS before the create / at the end / peak",
         f"{num(d['rss_before_mb'], 0)} / {num(d['rss_mb'], 0)} / {num(d['peak_rss_mb'], 0)} MB"],
        ["server CPU time over the run (create to end)", f"{num(d['server_cpu_seconds'], 1)} s"],
        ["stream lanes (`CHAT_STREAM_LANES`)", d.get("lanes", "4")],
        ["ERROR lines in the server's log", d["server_errors_logged"]],
    ]
    lines = [
        "`python -m devtools.run` as `make run` starts it (ephemeral data), on free ports. Customer B makes a 1:1 "
        "chat; customer A creates a group of 1,000 agents, then at once sends it one message; half a second later B "
        "sends one message in the 1:1 chat. Copies are looked up in the server's own DynamoDB (its embedded moto, on "
        "a port the bench chose) by their derived keys, only those not seen yet (BatchGetItem, 100 a request): every "
        "half second for the large message, every 50 ms for the 1:1. Then A removes one participant. RSS from "
        "/proc/<pid>/status (VmRSS, VmHWM). Targets from the issue. The bench's client shares the 2 cores.", "",
    ]
    return lines + table(["figure", "value"], rows)


METHOD = """\
- **Counting requests.** `botocore.client.BaseClient._make_api_call` is wrapped (as
  `tests/test_request_budget.py` does); every DynamoDB request the process makes is recorded by
  operation name. DynamoDB Streams reads are not DynamoDB table requests and are not counted.
- **Consumed capacity is computed, not taken from moto.** moto answers `ReturnConsumedCapacity`
  with a fixed number per operation whatever the item size, so the meter reads each written item
  from moto's backend before and after the request and applies DynamoDB's published rules: item
  size = attribute names + values (strings UTF-8 bytes, numbers ~1 byte per 2 digits + 1, lists and
  maps 3 bytes + 1 per element); reads 4 KB units (the sum of the items for a Query page, each item
  for GetItem/BatchGetItem), ×0.5 when eventually consistent (every index query is); writes 1 KB
  units of the larger of the old and new image, ×2 inside `TransactWriteItems`; each global index
  the item is in before or after adds its own writes of the item as the index projects it (1 per
  KB; 2 when its key changes; none when no projected attribute changes), read from the table
  definition the service deploys. Index propagation is counted at the standard rate, not doubled.
  Failed conditional writes are charged as attempted.
- **moto.** Every process using moto applies `devtools.moto_patches.apply()`. The bench's
  own processes also apply `bench.common.tune_moto()`: five of moto 5.2's costs grow with the
  square of the items' size or with the table (response serialisation walking botocore's shapes,
  about 6 ms per item of 20 attributes; the 400 KB item-size guard re-measuring every attribute on
  each set; sorting the whole table before every Query; projecting items onto an index through plain
  JSON and back; comparing key strings through its typed-value conversion), and moto keeps every
  `Item` it ever made
  in a class-level list for its dashboard, the copies every Query and transaction makes included,
  so a process with moto grows with each request (by about 25 MB per 1,000 mixed requests here).
  These change moto's speed and memory, not its answers for the types this service stores; they
  make moto's share of every timing smaller, so ratios against plain boto3 on the same moto are
  stricter. `make run`'s server (§6, §8) applies only the first of them itself
  (`devtools/moto_patches.py`: AttributeValues written as they are, never binary ones), and remembers
  which backend a host is (moto's dispatcher listed its package directory on every request).
- **Scale.** Everything the issue names is at full size: 1,000 and 100,000 items, 2 to 1,000
  participants, 8 clients for 30 s, 10,000 requests. Scaled down: the fan-out times 1 to 39
  messages per chat size (fewer for large chats, 2 at 1,000 participants); the memory cross-check
  without moto makes 1,000 requests (its RSS levels off within the first 100), alongside the
  in-process run.
- **Timing noise.** This machine may run other work: the load average is recorded above; every
  ratio compares two sides measured interleaved in the same run, so both see the same machine.
"""


def render(r: dict) -> str:
    m = r["machine"]
    durations = ", ".join(f"{n} {r[n]['seconds']:.0f} s" for n in r["chosen"] if n in r)
    lines = [
        "# Performance: measured figures",
        "",
        "Generated by `.venv/bin/python bench/run_all.py` (`make bench`); do not edit by hand. Raw figures: "
        "`bench/results.json`.",
        "",
        f"- **Date:** {r['date']}; whole run {num(r['total_seconds'] / 60, 1)} min "
        f"({durations})",
        f"- **Machine:** {m['cpu']}, {m['cores']} cores, {num(m['ram_gb'], 1)} GB RAM, {m['os']}",
        f"- **Python:** {m['implementation']} {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        f"- **Load average** (1/5/15 min) before: {r['load_before']}, after: {r['load_after']}",
    ]
    for again in r.get("again", []):
        lines.append(f"- **Measured again** ({', '.join(again['chosen'])}; `run_all.py --keep`, the other figures are "
                     f"from the date above): {again['date']}, {num(again['total_seconds'] / 60, 1)} min; load average "
                     f"before: {again['load_before']}, after: {again['load_after']}")
    if r.get("environment"):
        lines.append(f"- **Sizes changed by environment:** {r['environment']}")
    lines.append("")
    head, above = headline(r)
    lines += ["## Headline", ""] + head
    lines += ["## Above target, and why", ""]
    lines += (above or ["Nothing: every figure meets its floor or target."]) + [""]
    sections = [
        ("cost", "1. DynamoDB cost per operation", section_cost),
        ("growth", "2. Cost as data grows", section_growth),
        ("fanout", "3. Fan-out through the stream", section_fanout),
        ("coldstart", "4. Cold start", section_coldstart),
        ("warm", "5. Warm overhead", section_warm),
        ("load", "6. The local server under load", section_load),
        ("memory", "7. Memory", section_memory),
        ("large_group", "8. A 1,000-agent group through the local server", section_large_group),
    ]
    for name, title, render_section in sections:
        if name not in r:
            continue
        lines += [f"## {title}", ""]
        lines += section_failed(name, r[name]) if r[name].get("failed") else render_section(r)
    lines += ["## Method", "", METHOD]
    return "\n".join(lines)
