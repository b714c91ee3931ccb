"""bench/results.json (what run_all.py measured) to bench/RESULTS.md.

The sections, their order and numbers come from the registry
(bench/sections.py). A built-in section renders here: RENDERERS gives its
body, HEADLINES its rows of the headline table and its findings above
target. A section declared by its own module renders itself (the module's
render() and headline()), so adding one changes nothing in this file.
"""

import importlib
import math

from bench.sections import all_sections, numbers

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


def ops(operations: dict | None) -> str:
    if not operations:
        return "none"
    return ", ".join(f"{count} {name}" for name, count in sorted(operations.items()))


def kb(size: float) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:,.2f} MB"
    return f"{size / 1024:,.1f} KB"


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def ok(condition: bool) -> str:
    return "meets" if condition else "**above**"


def ok_data(r: dict, name: str) -> bool:
    return name in r and not r[name].get("failed")


def section_failed(name: str, result: dict) -> list[str]:
    return [f"**This measurement failed** after {result.get('seconds', 0):.0f} s:", "", "```",
            (result.get("error") or "")[-2500:], "```", ""]


# ---- 1. cost per operation ---------------------------------------------------------------------

def verdict(x: dict) -> str:
    if x["operations"] == x["floor_operations"]:
        return "at floor"
    if x["requests"] > x["floor_requests"]:
        return "**above**"
    if x["requests"] < x["floor_requests"]:
        return "below (floor?)"
    return "other operations"


def budget_cell(x: dict) -> str:
    if not x.get("budget_key"):
        return "—"
    if x.get("budget_operations") is None:
        return f"**not found**: `{x['budget_key']}`"
    if x["budget_operations"] == x["floor_operations"]:
        return "= floor"
    return f"**{ops(x['budget_operations'])}**"


def budget_check(data: dict) -> tuple[int, list[dict]]:
    """(rows that name a budget, those whose budget is missing or differs from their floor)."""
    named = [x for x in data["rows"] if x.get("budget_key")]
    named += [s[phase] for s in data.get("stream", []) for phase in ("work", "events") if s[phase].get("budget_key")]
    wrong = [x for x in named if x.get("budget_operations") != x["floor_operations"]]
    return len(named), wrong


def lower_floors(data: dict) -> list[tuple[str, str, str, str]]:
    """(what, ours, lower floor, why) of every row with a lower floor than the one it meets."""
    found = []
    for x in data["rows"]:  # a lower floor that saves nothing at this size is left to §2's sizes
        if x.get("lower_operations") is not None and x["lower_requests"] < x["requests"]:
            found.append((f"{x['endpoint']}, as {x['caller']}", ops(x["operations"]),
                          ops(x["lower_operations"]), x["lower_why"]))
    for s in data.get("stream", []):
        for phase in ("work", "events"):
            x = s[phase]
            if x.get("lower_operations") is not None and x["lower_requests"] < x["requests"]:
                found.append((f"stream, {s['record']} ({phase})", ops(x["operations"]), ops(x["lower_operations"]),
                               x["lower_why"]))
    return found


def section_cost(r: dict) -> list[str]:
    data = r["cost"]["data"]
    named, wrong = budget_check(data)
    missing = data.get("routes_missing", [])
    lines = [
        "Each endpoint (every route and method the app serves, the `/service_agents` ones included), through "
        "Chalice's test client against moto in the process: a group of 3 with 10 messages, a 1:1 chat, groups of "
        "60 (more than the 48 chatrooms the create transaction holds), 10 chats to list. Every agent and the "
        "customer's feed hold a websocket connection. After each request, every stream record it caused is handed "
        "alone to `app.on_table_change` (pushes on, API Gateway replaced by a list), and the first record of each "
        "kind is reported: its **work** (the fan-out, the cascades) and its **events** (what an event must read, "
        "and the connections of its audiences) apart. Capacity is computed from the item images (see Method), not "
        "taken from moto; bytes written are the items as written.", "",
        "Floors: the least a correct implementation of the access pattern does, with this storage design and "
        "contract (reads of one item strongly consistent; writes transactional (2× WCU) only where items must "
        "change together). **They are the budgets `tests/test_request_budget.py` asserts**: "
        + (f"all {named} rows that name a budget agree with it (checked by the bench against the test's own table)."
           if not wrong else f"{len(wrong)} of {named} rows that name a budget do **not** agree: "
           + "; ".join(f"{x['endpoint']}: floor {ops(x['floor_operations'])}, budget "
                       f"{ops(x.get('budget_operations'))}" for x in wrong) + ".")
        + f" Routes and methods served: {data.get('routes_served', 'n/a')}, "
        + ("all measured." if not missing else f"**not measured: {', '.join(missing)}**.")
        + " Where a lower floor exists than ours, the table after these says which and why ours is above it.", "",
        "**API requests**", "",
    ]
    rows = []
    for x in data["rows"]:
        rows.append([x["endpoint"], x["caller"], ops(x["operations"]), num(x["rcu"], 1),
                     f"{num(x['wcu'], 1)} ({num(x['wcu_index'], 1)})", kb(x.get("bytes_written", 0)),
                     ops(x["floor_operations"]), num(x["floor_rcu"], 1), num(x["floor_wcu"], 1), verdict(x),
                     budget_cell(x), x["note"]])
    lines += table(["endpoint", "caller", "DynamoDB requests", "RCU", "WCU (of which indexes)", "written",
                    "floor", "floor RCU", "floor WCU", "verdict", "tests' budget", "the floor, and why"], rows)
    stream = data.get("stream", [])
    if stream:
        lines += ["**Stream records** (each handed alone; in Lambda's batches of 100 the events' reads are shared "
                  "by the batch: §2 shows whole batches)", ""]
        rows = []
        for s in stream:
            w, e = s["work"], s["events"]
            both = "at floor" if verdict(w) == verdict(e) == "at floor" else f"{verdict(w)} / {verdict(e)}"
            why = "; ".join(part for part in (w["note"], e["note"] and f"events: {e['note']}") if part)
            rows.append([s["record"], ops(w["operations"]), ops(w["floor_operations"]), ops(e["operations"]),
                         ops(e["floor_operations"]), s["pushes"], num(w["rcu"] + e["rcu"], 1),
                         f"{num(w['wcu'], 1)} ({num(w['wcu_index'], 1)})", kb(w.get("bytes_written", 0)), both,
                         why or "—"])
        lines += table(["record", "work", "work floor", "events", "events floor", "pushes", "RCU", "WCU (indexes)",
                        "written", "verdict", "the floors, and why"], rows)
    lower = lower_floors(data)
    if lower:
        lines += ["**Above a lower floor, and why.** Every row above meets the floor it is held to; these could do "
                  "with fewer requests under another design or setting:", ""]
        by_why: dict[str, list] = {}
        for what, ours, low, why in lower:
            by_why.setdefault(why, []).append(f"{what}: {ours} → {low}")
        lines += table(["why ours is above it", "operations: ours → the lower floor"],
                       [[why, "<br>".join(items)] for why, items in by_why.items()])
    return lines


def headline_cost(r: dict, n: int) -> tuple[list, list]:
    data = r["cost"]["data"]
    api = data["rows"]
    stream = data.get("stream", [])
    at = [x for x in api if verdict(x) == "at floor"]
    named, wrong = budget_check(data)
    rows = [[f"{n}. DynamoDB requests per API operation (every route and method: {data.get('routes_served', '?')})",
             f"{len(at)} of {len(api)} at their floor", f"the floor (= the tests' budget: {named - len(wrong)} of "
             f"{named} agree)", "—", ok(len(at) == len(api) and not wrong)]]
    at_stream = [s for s in stream if verdict(s["work"]) == verdict(s["events"]) == "at floor"]
    rows.append([f"{n}. DynamoDB requests per stream record (work + events, {len(stream)} kinds)",
                 f"{len(at_stream)} of {len(stream)} at their floor", "the floor", "—",
                 ok(len(at_stream) == len(stream))])
    cap = [(x, (x["rcu"] + x["wcu"]) / (x["floor_rcu"] + x["floor_wcu"])) for x in api
           if x["floor_rcu"] + x["floor_wcu"]]
    if cap:
        worst, worst_ratio = max(cap, key=lambda p: p[1])
        rows.append([f"{n}. Consumed capacity (RCU + WCU) per API operation",
                     f"worst {worst['endpoint']} ({worst['caller']}): {num(worst['rcu'] + worst['wcu'], 1)}",
                     f"floor: {num(worst['floor_rcu'] + worst['floor_wcu'], 1)}", f"{worst_ratio:.2f}",
                     ok(worst_ratio <= 1.0 + 1e-9)])
    lower = lower_floors(data)
    rows.append([f"{n}. Operations above a lower floor (another design or setting)", f"{len(lower)}",
                 "(not the floor we hold to)", "—", f"why: §{n}"])
    above = []
    over = [x for x in api if verdict(x) != "at floor"]
    over += [dict(s[p], endpoint=f"stream, {s['record']} ({p})") for s in stream for p in ("work", "events")
             if verdict(s[p]) != "at floor"]
    if over:
        above.append(f"- {len(over)} operations are not at their floor (§{n}):")
        above += [f"  - {x['endpoint']}, as {x['caller']}: {ops(x['operations'])} against "
                  f"{ops(x['floor_operations'])}" for x in over]
    if wrong:
        above.append(f"- {len(wrong)} floors disagree with the tests' budgets (§{n}).")
    if data.get("routes_missing"):
        above.append(f"- Routes not measured: {', '.join(data['routes_missing'])} (§{n}).")
    if lower:
        by_why: dict[str, list] = {}
        for what, _ours, _low, why in lower:
            by_why.setdefault(why, []).append(what)
        above.append(f"- At their floor, but above a lower one (§{n}):")
        above += [f"  - {len(whats)} operation{'s' if len(whats) > 1 else ''} "
                  f"({', '.join(whats[:3])}{', ...' if len(whats) > 3 else ''}): {why}"
                  for why, whats in by_why.items()]
    return rows, above


# ---- 2. large groups ------------------------------------------------------------------------------

def _get(o: dict, *path):
    for key in path:
        if not isinstance(o, dict) or key not in o:
            return None
        o = o[key]
    return o


# (label, path to the cost summary in a size's "ops", floor key or None)
GROUP_ROWS = (
    ("create (POST /chats): the API", ("create", "api"), "create"),
    ("create: the stream's work (the large-chat re-check)", ("create", "stream", "work"), "create_work"),
    ("create: the events of its 2N+2 records", ("create", "stream", "events"), None),
    ("send (POST /chatmessages): the API", ("send", "api"), "send"),
    ("send: the fan-out (its INSERT handed alone)", ("send", "fanout"), "fanout"),
    ("a pushed event: messagechat_created to the N participants", ("push", "events"), "push"),
    ("send: the events of the other 2N records (copies, chatrooms)", ("send", "stream", "events"), None),
    ("mark-read to a copy (POST /chatrooms/{id}/read)", ("read_copy", "api"), "read_copy"),
    ("mark-read to the newest", ("read_newest", "api"), "read_newest"),
    ("the inbox by activity (GET /chatrooms?order=activity)", ("list_activity", "api"), "list_activity"),
    ("edit (PUT /chatmessages/{id})", ("edit", "api"), "edit"),
    ("edit: its events (every copy's owner hears it)", ("edit", "stream", "events"), None),
    ("reaction (POST /chatmessages/{id}/reactions)", ("react", "api"), "react"),
    ("reaction: its events", ("react", "stream", "events"), None),
    ("add a participant", ("add", "api"), "add"),
    ("add: its events", ("add", "stream", "events"), None),
    ("remove a participant", ("remove", "api"), "remove"),
    ("remove: its events", ("remove", "stream", "events"), None),
    ("delete the chat: the API", ("delete", "api"), "delete"),
    ("delete: the stream's work (the chatrooms' deletes)", ("delete", "stream", "work"), "delete_work"),
    ("delete: the events (chat_deleted, N chatroom_deleted)", ("delete", "stream", "events"), None),
)
CAPACITY_ROWS = ("create (POST /chats): the API", "send (POST /chatmessages): the API",
                 "send: the fan-out (its INSERT handed alone)", "a pushed event: messagechat_created to the N "
                 "participants", "mark-read to a copy (POST /chatrooms/{id}/read)", "mark-read to the newest",
                 "the inbox by activity (GET /chatrooms?order=activity)", "edit (PUT /chatmessages/{id})",
                 "reaction (POST /chatmessages/{id}/reactions)", "add a participant", "remove a participant",
                 "delete the chat: the API", "delete: the stream's work (the chatrooms' deletes)")


def group_cells(sizes: list[dict], path: tuple) -> list[dict | None]:
    return [_get(size["ops"], *path) for size in sizes]


def exponent(small: float, large: float, n_small: int, n_large: int) -> float | None:
    if not small or not large or n_small == n_large:
        return None
    return math.log(large / small) / math.log(n_large / n_small)


def group_verdict(sizes: list[dict], path: tuple, key: str | None) -> str:
    if key is None:
        return "—"
    over = [size["participants"] for size, cost in zip(sizes, group_cells(sizes, path), strict=True)
            if cost is not None and cost["requests"] > size["floors"][key]["requests"]]
    return "at floor" if not over else "**above** at N = " + ", ".join(num(n) for n in over)


def section_groups(r: dict) -> list[str]:
    sizes = r["groups"]["data"]["sizes"]
    head = [f"N = {num(size['participants'])}" for size in sizes]
    lines = [
        "A group chat of N agents created through the API; every agent and the customer's feed hold a websocket "
        "connection; then, in this order: a send by one member (its chatmessage INSERT handed alone to the stream "
        "handler: the fan-out and the one event to all N; then the other records in Lambda's batches of 100), "
        "mark-read to a copy (the owner) and to the newest (the sender), the owner's inbox by activity, an edit, a "
        "reaction, removing and adding one participant (adding then removing one for N = 2), deleting the chat "
        "(and its cascade). Through Chalice's test client against moto in this process; requests counted, capacity "
        "and bytes computed as in §1. Each cell: requests (ours); the floor column gives the floor at each N.", "",
        "**Requests per operation**", "",
    ]
    rows = []
    for label, path, key in GROUP_ROWS:
        cells = group_cells(sizes, path)
        values = [f"{c['requests']}" if c is not None else "n/a" for c in cells]
        floor = " / ".join(str(size["floors"][key]["requests"]) for size in sizes) if key else "—"
        why = sizes[-1]["floors"][key]["why"] if key else ""
        if key and "lower" in sizes[-1]["floors"][key]:
            floor += " (lower: " + " / ".join(str(size["floors"][key]["lower"]) for size in sizes) + ")"
        ops_large = ops(cells[-1]["operations"]) if cells[-1] is not None else "n/a"
        rows.append([label, *values, floor, group_verdict(sizes, path, key), f"{ops_large}", why])
    lines += table(["operation", *head, "floor", "verdict", f"at N = {num(sizes[-1]['participants'])}",
                    "the floor, and why"], rows)

    lines += ["**Capacity and bytes written** (RCU / WCU / written)", ""]
    rows = []
    for label, path, _key in GROUP_ROWS:
        if label not in CAPACITY_ROWS:
            continue
        cells = []
        for cost in group_cells(sizes, path):
            cells.append("n/a" if cost is None else
                         f"{num(cost['rcu'], 1)} / {num(cost['wcu'], 1)} / {kb(cost.get('bytes_written', 0))}")
        rows.append([label, *cells])
    lines += table(["operation", *head], rows)

    lines += ["**How they grow.** Bytes written (per participant in brackets), and the growth exponent between "
              "the two largest sizes: 1.0 is linear, 2.0 quadratic, 0 constant (requests the same way):", ""]
    rows = []
    first, last = sizes[-2] if len(sizes) > 1 else sizes[0], sizes[-1]
    for label, path in (("create: the API", ("create", "api")), ("send: the fan-out", ("send", "fanout")),
                        ("delete: the stream's work", ("delete", "stream", "work")),
                        ("add a participant", ("add", "api")), ("remove a participant", ("remove", "api")),
                        ("edit", ("edit", "api")), ("reaction", ("react", "api"))):
        costs = group_cells(sizes, path)
        written = [f"{kb(c['bytes_written'])} ({kb(c['bytes_written'] / size['participants'])})" if c else "n/a"
                   for size, c in zip(sizes, costs, strict=True)]
        a, b = _get(first["ops"], *path), _get(last["ops"], *path)
        bytes_exp = exponent(a and a["bytes_written"], b and b["bytes_written"], first["participants"],
                             last["participants"])
        req_exp = exponent(a and a["requests"], b and b["requests"], first["participants"], last["participants"])
        rows.append([label, *written, num(bytes_exp, 2), num(req_exp, 2)])
    lines += table(["operation", *[f"written, {h}" for h in head], "bytes: exponent", "requests: exponent"], rows)
    lines += [f"The chat item, which holds the participant list, is {kb(last['chat_item_bytes'])} at "
              f"N = {num(last['participants'])}: adding or removing one participant rewrites it (O(N) bytes, O(1) "
              "requests, as the README's Known limits say).", ""]

    lines += ["**Read state rides in the fan-out's writes.** The copies and their chatrooms' updates (unread_count, "
              "tm_read, tm_activity, preview) are written in the same transactions, and then checked through the "
              "API:", ""]
    rows = []
    for size in sizes:
        fan = size["ops"]["send"]["fanout"]
        checks = size["ops"]["send"].get("read_state_checks", {})
        kinds = fan.get("kinds_written", {})
        rows.append([num(size["participants"]), f"{fan['requests']} ({ops(fan['operations'])})",
                     size["floors"]["fanout"]["requests"], kinds.get("chatroommessage", 0), kinds.get("chatroom", 0),
                     fan.get("largest_transaction", "n/a"),
                     "all pass" if checks and all(checks.values()) else
                     "**fail**: " + ", ".join(k for k, v in checks.items() if not v)])
    lines += table(["N", "fan-out requests", "floor", "copies written", "chatrooms updated in the same transactions",
                    "largest transaction (actions)", "checks: recipient unread 1, its activity and preview the "
                    "message's, sender unread 0"], rows)

    lines += ["**Time** (seconds, in this process, moto included: a measure of the bench, not of DynamoDB)", ""]
    rows = []
    for size in sizes:
        o = size["ops"]
        rows.append([num(size["participants"]), num(size["seconds"], 1), num(size["connect_seconds"], 1),
                     num(o["create"]["api_seconds"], 2), num(_get(o, "create", "stream", "seconds"), 2),
                     num(_get(o, "send", "fanout", "seconds"), 2), num(_get(o, "send", "stream", "seconds"), 2),
                     num(_get(o, "edit", "stream", "seconds"), 2), num(_get(o, "delete", "stream", "seconds"), 2)])
    lines += table(["N", "whole size", "connecting N + 1 sockets", "create: API", "create: stream", "fan-out",
                    "send: other records", "edit: events", "delete: stream"], rows)
    return lines


def headline_groups(r: dict, n: int) -> tuple[list, list]:
    sizes = r["groups"]["data"]["sizes"]
    small, large = sizes[0], sizes[-1]
    label_n = f"N = {num(small['participants'])} / {num(large['participants'])}"
    rows, above = [], []
    for label, parts in (("create", (("create", "api"), ("create", "stream", "work"))),
                         ("send (API + fan-out)", (("send", "api"), ("send", "fanout"))),
                         ("a pushed event (messagechat_created to N)", (("push", "events"),)),
                         ("add a participant", (("add", "api"),)), ("remove a participant", (("remove", "api"),)),
                         ("delete (API + cascade)", (("delete", "api"), ("delete", "stream", "work"))),
                         ("mark-read to a copy", (("read_copy", "api"),)), ("edit", (("edit", "api"),)),
                         ("reaction", (("react", "api"),))):
        keys = {("create", "api"): "create", ("create", "stream", "work"): "create_work", ("send", "api"): "send",
                ("send", "fanout"): "fanout", ("push", "events"): "push", ("add", "api"): "add",
                ("remove", "api"): "remove", ("delete", "api"): "delete", ("delete", "stream", "work"): "delete_work",
                ("read_copy", "api"): "read_copy", ("edit", "api"): "edit", ("react", "api"): "react"}

        def total(size, parts=parts):
            return sum((_get(size["ops"], *p) or {}).get("requests", 0) for p in parts)

        def floor(size, parts=parts, keys=keys):
            return sum(size["floors"][keys[p]]["requests"] for p in parts)

        ours = f"{total(small)} / {total(large)}"
        floors_text = f"{floor(small)} / {floor(large)}"
        meets = all(total(s) <= floor(s) for s in sizes)
        rows.append([f"{n}. Large groups, {label}: requests at {label_n}", ours, floors_text,
                     ratio(total(large), floor(large)), ok(meets)])
    create = _get(large["ops"], "create", "api")
    if create:
        rows.append([f"{n}. Bytes written by a create at N = {num(large['participants'])}",
                     f"{kb(create['bytes_written'])} ({kb(create['bytes_written'] / large['participants'])} per "
                     "participant)", "O(N)", "—", "meets" if _create_linear(sizes) else "**above**"])
    checks = [all(size["ops"]["send"].get("read_state_checks", {}).values()) for size in sizes]
    rows.append([f"{n}. Read state in the fan-out's transactions (no extra request per copy), {label_n}",
                 "checks pass" if all(checks) else "**checks fail**", "—", "—", ok(all(checks))])
    push = [s for s in sizes if _get(s["ops"], "push", "events", "requests") is not None
            and s["ops"]["push"]["events"]["requests"] > s["floors"]["push"]["requests"]]
    if push:
        above.append(f"- A pushed event to N participants takes 1 + ceil((N + 1)/100) requests, one more than the "
                     f"issue's 1 + ceil(N/100) at N = {', '.join(num(s['participants']) for s in push)}: the "
                     f"customer's feed is an audience too (N + 1 audience items, 100 to a BatchGetItem) (§{n}).")
    fan = large["floors"]["fanout"]
    above.append(f"- The fan-out and the chat-delete cascade meet the issue's 1 + ceil(N/25) "
                 f"({fan['requests']} at N = {num(large['participants'])}) but 25 is no longer what a transaction "
                 f"holds: copies carry no text now, so 50 copies with their chatrooms (100 actions) would give "
                 f"{fan['lower']}, and 100 chatroom deletes per transaction "
                 f"{large['floors']['delete_work']['lower']} (fanout.ITEMS_PER_TRANSACTION, chalicelib) (§{n}).")
    add = _get(large["ops"], "add", "api")
    if add:
        above.append(f"- Adding or removing a participant is 2 requests at any size, but rewrites the chat item and "
                     f"its list-index entry: {kb(add['bytes_written'])} written, {num(add['wcu'], 0)} WCU at N = "
                     f"{num(large['participants'])} (O(N) bytes: the list is stored once, in the chat) (§{n}).")
    if not all(checks):
        above.append(f"- Read-state checks failed after the fan-out (§{n}).")
    return rows, above


def _create_linear(sizes: list[dict]) -> bool:
    if len(sizes) < 2:
        return True
    a, b = sizes[-2], sizes[-1]
    value = exponent(a["ops"]["create"]["api"]["bytes_written"], b["ops"]["create"]["api"]["bytes_written"],
                     a["participants"], b["participants"])
    return value is None or value < 1.2


# ---- growth ----------------------------------------------------------------------------------

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
        f"({num(large['load_items_per_second'], 0)} items/s for the large table), linked as the service links "
        "them: each chatroom of its own chat with a copy as its preview, each copy of its own chatmessage, so a "
        "page's join (a chatroom's chat and preview, a copy's chatmessage) reads real items: a full page of 100 "
        "chatrooms needs 200 of them, 100 keys to a BatchGetItem.", "",
    ]
    lines += table(head, rows)
    moto_small = sum(x["seconds"] for x in small["rows"] if "list" in x["endpoint"] or "?" in x["endpoint"])
    moto_large = sum(x["seconds"] for x in large["rows"] if "list" in x["endpoint"] or "?" in x["endpoint"])
    lines += [f"Time is no measure here: moto answers a Query by reading every item of the table (the lists above "
              f"took {num(moto_small, 1)} s at {num(small['items'])} items and {num(moto_large, 1)} s at "
              f"{num(large['items'])}); DynamoDB reads one partition.", ""]
    return lines


def headline_growth(r: dict, n: int) -> tuple[list, list]:
    sizes = r["growth"]["data"]["sizes"]
    small, large = sizes[0], sizes[-1]
    grows = [a["endpoint"] for a, b in zip(small["rows"], large["rows"], strict=True)
             if (b["requests"], b["items_read"]) != (a["requests"], a["items_read"])]
    most = max(b["items_read"] / a["items_read"] for a, b in zip(small["rows"], large["rows"], strict=True)
               if a["items_read"])
    rows = [[f"{n}. Requests and items read per page, {num(large['items'])} vs {num(small['items'])} items",
             "no growth" if not grows else f"grows: {', '.join(grows)}", "must not grow", f"{most:.2f}",
             ok(not grows)]]
    above = [f"- Cost grows with the table for: {', '.join(grows)} (§{n})."] if grows else []
    full = [x for x in large["rows"] if x["endpoint"].startswith("GET /chatrooms") and "?" not in x["endpoint"]
            and "{id}" not in x["endpoint"]]
    if full and full[0]["operations"].get("BatchGetItem", 0) > 1:
        x = full[0]
        above.append(f"- A full page of 100 chatrooms (each of its own chat, each with a preview) makes "
                     f"{ops(x['operations'])}: the page's join needs 200 items, 100 keys to a BatchGetItem, "
                     f"{num(x['rcu'], 1)} RCU (the tests' budget of 1 BatchGetItem holds for pages of up to 50 "
                     f"such chatrooms) (§{n}).")
    return rows, above


# ---- fan-out ---------------------------------------------------------------------------------

def fanout_ops(size: dict) -> str:
    operations = dict(size["per_message"]["operations"])
    if "query_pages_dynamodb" in size:
        operations["Query"] = size["query_pages_dynamodb"]
    return ops(operations)


def section_fanout(r: dict) -> list[str]:
    rows = []
    for s in r["fanout"]["data"]["sizes"]:
        per = s["per_message"]
        requests = s.get("requests_dynamodb", per["requests"])
        moto = "" if requests == per["requests"] else f" (moto: {ops(per['operations'])})"
        rows.append([num(s["participants"]), num(s["chatrooms"]), num(s["chatroom_bytes"] / 1024, 1),
                     f"{requests}: {fanout_ops(s)}{moto}", s["floor_requests"], ratio(requests, s["floor_requests"]),
                     num(s.get("rcu_dynamodb", per["rcu"]), 1), num(per["wcu"], 0), num(s.get("plain_wcu"), 0),
                     kb(s.get("bytes_written", 0)), s.get("largest_transaction", "n/a"),
                     num(s["copies_per_second"], 0), num(s["plain_items_per_second"], 0),
                     num(s["create_seconds"], 2)])
    lines = [
        "A chat of N agents created through the API; messages sent with `POST /v1.0/chatmessages` by the customer "
        "(so every chatroom gets a copy); their INSERT records read from moto's stream with the dynamodbstreams API "
        "and handed to `app.on_table_change` one message at a time (no websocket connections: the fan-out alone). "
        "Requests and capacity: the first message (metered). Copies/s: the other messages, nothing patched, in this "
        "process (moto's work included); for scale, the same copy items written again with plain boto3 "
        "`BatchWriteItem` on the same moto. Floor: 1 Query of the members + 1 transaction per 25 chatrooms, each "
        "copy written with its chatroom's read state (unread_count, tm_activity, preview) in one transaction, so "
        "the floor's WCU are ours; \"WCU, not transactional\" is what the same items would cost as plain writes "
        "(the price of exact counts under replays). Query pages: moto cuts a Query's pages at 1 MB of whole items, "
        "DynamoDB at 1 MB of what it reads; requests are given as DynamoDB would page, and moto's own count in "
        "brackets if different.", "",
    ]
    return lines + table(["participants", "chatrooms", "chatroom item KB", "requests per message", "floor", "ratio",
                          "RCU", "WCU", "WCU, not transactional", "written", "largest transaction (actions)",
                          "copies/s (ours)", "items/s (plain BatchWriteItem)", "create chat s"], rows)


def headline_fanout(r: dict, n: int) -> tuple[list, list]:
    sizes = r["fanout"]["data"]["sizes"]
    ours = [s.get("requests_dynamodb", s["per_message"]["requests"]) for s in sizes]
    floors = [s["floor_requests"] for s in sizes]
    rows = [[f"{n}. Fan-out requests per message, " + " / ".join(num(s["participants"]) for s in sizes)
             + " participants", " / ".join(map(str, ours)) + " (1 Query + ceil(N/25) transactions)",
             " / ".join(map(str, floors)), ratio(ours[-1], floors[-1]), ok(all(a <= b for a, b in zip(
                 ours, floors, strict=True)))],
            [f"{n}. Fan-out copies per second in this process (moto included), "
             + " / ".join(num(s["participants"]) for s in sizes), " / ".join(num(s["copies_per_second"], 0)
                                                                           for s in sizes), "(no target)", "—", "—"]]
    above = []
    if any(a > b for a, b in zip(ours, floors, strict=True)):
        above.append(f"- Fan-out above 1 + ceil(N/25) requests per message (§{n}).")
    return rows, above


# ---- cold start (bench/coldstart.py, unchanged) --------------------------------------------------

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


def headline_coldstart(r: dict, n: int) -> tuple[list, list]:
    s = r["coldstart"]["data"]["summary"]
    rows, above = [], []
    for variant in ("ours", "ours-packaged"):
        value = s[variant]["total_seconds"] / s["bare"]["total_seconds"]
        label = "as installed in .venv" if variant == "ours" else "as packaged (no `cryptography`)"
        rows.append([f"{n}. Cold start, import + first request, {label}",
                     f"{num(s[variant]['total_seconds'] * 1000, 0)} ms vs "
                     f"{num(s['bare']['total_seconds'] * 1000, 0)} ms bare", f"ratio ≤ {COLD_TARGET}",
                     f"{value:.2f}", ok(value <= COLD_TARGET)])
    mem = s["ours-packaged"]["peak_rss_mb"] / s["bare"]["peak_rss_mb"]
    rows.append([f"{n}. Cold start peak RSS, as packaged", f"{num(s['ours-packaged']['peak_rss_mb'])} MB vs "
                 f"{num(s['bare']['peak_rss_mb'])} MB bare", "(no target)", f"{mem:.2f}", "—"])
    worst = max(s["ours"]["total_seconds"], s["ours-packaged"]["total_seconds"]) / s["bare"]["total_seconds"]
    if worst > COLD_TARGET:
        above.append(cold_finding(r).replace("(§4, §7)", f"(§{n})"))
    return rows, above


# ---- warm overhead ------------------------------------------------------------------------------

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


def headline_warm(r: dict, n: int) -> tuple[list, list]:
    warm_rows = r["warm"]["data"]["rows"]
    rows = [[f"{n}. Warm overhead, {row['operation']} (Chalice test client)",
             f"{num(row['ours_per_second'], 0)} req/s vs {num(row['plain_per_second'], 0)} plain",
             f"ratio ≤ {WARM_TARGET}", f"{row['ratio']:.2f}", ok(row["ratio"] <= WARM_TARGET)] for row in warm_rows]
    above = []
    if any(row["ratio"] > WARM_TARGET for row in warm_rows):
        above.append("- Warm overhead above 1.5 for: " + ", ".join(
            f"{row['operation']} ({row['ratio']:.2f}; through the Lambda entry {row['direct_ratio']:.2f})"
            for row in warm_rows if row["ratio"] > WARM_TARGET) + f" (§{n}).")
    return rows, above


# ---- the local server under load ------------------------------------------------------------------

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
        "poller and Chalice local server, exactly as `make run` starts it (of the bench's moto speed-ups, only the "
        "first is `make run`'s own too: see Method). "
        "8 threads, one agent each, one keep-alive connection each; 50% `POST /v1.0/chatroommessages`, "
        "50% `GET /v1.0/chatroommessages?page_size=20`, into or from one of the agent's two chatrooms (a group "
        "chat of 8, and a 1:1 chat). Then, for every message sent, the chatrooms its copies are in are read from the "
        "server's own DynamoDB (its embedded moto, on a port the bench chose: one Query of the relation index per "
        "message), again every half second until every copy is in every chatroom of its chat or 180 s pass. The "
        "load generator shares the machine's 2 cores with the server.", "",
    ]
    lines += table(["figure", "value"], rows)
    if d.get("error_samples"):
        lines += ["Error samples:", "", "```", *d["error_samples"], "```", ""]
    return lines


def headline_load(r: dict, n: int) -> tuple[list, list]:
    d = r["load"]["data"]
    rows = [[f"{n}. Local server, {d['clients']} clients × {num(d['seconds'], 0)} s",
             f"{num(d['requests_per_second'])} req/s, p50 {num(d['p50_ms'], 0)} ms, p99 {num(d['p99_ms'], 0)} ms",
             "(no target)", "—", "—"],
            [f"{n}. Errors; copies missing at the end", f"{d['errors']}; {d['copies_missing']} of "
             f"{num(d['copies_expected'])}", "0; 0", "—", ok(d["errors"] == 0 and d["copies_missing"] == 0)]]
    above = []
    if d["errors"] or d["copies_missing"]:
        above.append(f"- The local server under load: {d['errors']} errors, {d['copies_missing']} copies missing"
                     f" at the deadline (§{n}).")
    return rows, above


# ---- memory ----------------------------------------------------------------------------------

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


def headline_memory(r: dict, n: int) -> tuple[list, list]:
    d = r["memory"]["data"]
    share = d["service_share_mb"]
    rows = [[f"{n}. Memory: the service's share of one process, {num(d['requests'])} requests",
             f"{num(share)} MB (peak {num(d['service']['peak_rss_mb'])} MB − moto baseline "
             f"{num(d['baseline']['peak_rss_mb'])} MB)", f"< {MEMORY_TARGET_MB} MB",
             f"{share / MEMORY_TARGET_MB:.2f}", ok(share < MEMORY_TARGET_MB)]]
    remote = d.get("remote")
    if remote:
        rows.append([f"{n}. Memory, cross-check without moto in the process, {num(d['remote_requests'])} requests",
                     f"{num(remote['peak_rss_mb'])} MB peak", f"< {MEMORY_TARGET_MB} MB",
                     f"{remote['peak_rss_mb'] / MEMORY_TARGET_MB:.2f}", ok(remote["peak_rss_mb"] < MEMORY_TARGET_MB)])
    above = []
    if share >= MEMORY_TARGET_MB or (remote and remote["peak_rss_mb"] >= MEMORY_TARGET_MB):
        above.append(f"- Memory at or above 128 MB (§{n}).")
    return rows, above


# ---- websocket latency --------------------------------------------------------------------------

def section_ws_latency(r: dict) -> list[str]:
    d = r["ws_latency"]["data"]
    lines = [
        "`bench/ws_latency.py`: `make run`'s server as a subprocess (its moto server, stream poller, Chalice local "
        "server and local websocket server); one agent sends through its chatroom, another, connected on the "
        "websocket, times each `messagechatroom_created` of its own copy: from before the POST to the event's "
        f"arrival, {d['messages']} messages one after another. It includes the POST itself, the local stream "
        "poller (it looks again every 50 ms when idle), the stream handler against the local moto server and the "
        "push; on AWS, Lambda's polling of the stream sets most of it.", "",
    ]
    return lines + table(["messages", "median ms", "p90 ms", "worst ms"],
                         [[d["messages"], num(d["median_ms"], 0), num(d["p90_ms"], 0), num(d["worst_ms"], 0)]])


def headline_ws_latency(r: dict, n: int) -> tuple[list, list]:
    d = r["ws_latency"]["data"]
    return [[f"{n}. Websocket push, send to receipt, local stack", f"median {num(d['median_ms'], 0)} ms, p90 "
             f"{num(d['p90_ms'], 0)} ms, worst {num(d['worst_ms'], 0)} ms", "(no target)", "—", "—"]], []


# ---- the registry's built-in sections ----------------------------------------------------------

RENDERERS = {
    "cost": section_cost, "groups": section_groups, "growth": section_growth, "fanout": section_fanout,
    "coldstart": section_coldstart, "warm": section_warm, "load": section_load, "memory": section_memory,
    "ws_latency": section_ws_latency,
}
HEADLINES = {
    "cost": headline_cost, "groups": headline_groups, "growth": headline_growth, "fanout": headline_fanout,
    "coldstart": headline_coldstart, "warm": headline_warm, "load": headline_load, "memory": headline_memory,
    "ws_latency": headline_ws_latency,
}


def _declared(name: str):
    return importlib.import_module(f"bench.{name}")


def section_body(section, r: dict) -> list[str]:
    if section.builtin:
        return RENDERERS[section.name](r)
    return list(_declared(section.name).render(r[section.name]["data"]))


def section_headline(section, r: dict, number: int) -> tuple[list, list]:
    if section.builtin:
        return HEADLINES[section.name](r, number)
    module = _declared(section.name)
    if not hasattr(module, "headline"):
        return [], []
    return module.headline(r[section.name]["data"], number)


METHOD = """\
- **Counting requests.** `botocore.client.BaseClient._make_api_call` is wrapped (as
  `tests/test_request_budget.py` does); every DynamoDB request the process makes is recorded by
  operation name. DynamoDB Streams reads are not DynamoDB table requests and are not counted. In
  the stream handler, a request made inside `services.fanout.follow` counts as its work (fan-out,
  cascades), any other as its events (the reads events need, the connections of their audiences).
- **Consumed capacity is computed, not taken from moto.** moto answers `ReturnConsumedCapacity`
  with a fixed number per operation whatever the item size, so the meter reads each written item
  from moto's backend before and after the request and applies DynamoDB's published rules: item
  size = attribute names + values (strings UTF-8 bytes, numbers ~1 byte per 2 digits + 1, lists and
  maps 3 bytes + 1 per element); reads 4 KB units (the sum of the items for a Query page, each item
  for GetItem/BatchGetItem, a key not found the least unit), ×0.5 when eventually consistent (every
  index query is); writes 1 KB units of the larger of the old and new image, ×2 inside
  `TransactWriteItems` (a `ConditionCheck` is billed as a transactional write of its item); each
  global index the item is in before or after adds its own writes of the item as the index
  projects it (1 per KB; 2 when its key changes; none when no projected attribute changes), read
  from the table definition the service deploys. Index propagation is counted at the standard
  rate, not doubled. Failed conditional writes are charged as attempted. **Bytes written** are the
  new images of the items a request changed (table only; index entries are counted apart in
  `bench/results.json`).
- **Floors** are written next to each measurement (`bench/cost.py`, `bench/groups.py`) with their
  reason; where `tests/test_request_budget.py` asserts a budget for the same operation, the row
  names it and the bench checks the floor against the test's own table. A floor's RCU are those of
  the reads it keeps, as made; its WCU are every write, transactional only if the floor needs a
  transaction.
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
  stricter. `make run`'s server (the local server under load, the websocket latency, the
  1,000-agent group through it) applies only the first of them itself (`devtools/moto_patches.py`:
  AttributeValues written as they are, never binary ones), and remembers which backend a host is
  (moto's dispatcher listed its package directory on every request).
- **Scale.** Everything the issues name is at full size: 1,000 and 100,000 items, groups of 2,
  10, 100 and 1,000 participants (each with a websocket connection), 8 clients for 30 s, 10,000
  requests. Scaled down: the fan-out times 1 to 39 messages per chat size (fewer for large chats, 2
  at 1,000 participants); the memory cross-check without moto makes 1,000 requests (its RSS levels
  off within the first 100), alongside the in-process run.
- **Timing noise.** This machine may run other work: the load average is recorded above; every
  ratio compares two sides measured interleaved in the same run, so both see the same machine.
"""


def render(r: dict) -> str:
    m = r["machine"]
    sections = [s for s in all_sections() if s.name in r]
    number = numbers()
    lines = [
        "# Performance: measured figures",
        "",
        "Generated by `.venv/bin/python bench/run_all.py` (`make bench`); do not edit by hand. Raw figures: "
        "`bench/results.json`.",
        "",
        f"- **Date:** {r['date']}; whole run {num(r['total_seconds'] / 60, 1)} min",
        f"- **Machine:** {m['cpu']}, {m['cores']} cores, {num(m['ram_gb'], 1)} GB RAM, {m['os']}",
        f"- **Python:** {m['implementation']} {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        f"- **Load average** (1/5/15 min) before: {r['load_before']}, after: {r['load_after']}",
    ]
    if r.get("environment"):
        lines.append(f"- **Sizes changed by environment:** {r['environment']}")
    lines += ["", "Each section's time, and the machine's load around it (2 cores, shared with other work):", ""]
    lines += table(["§", "section", "seconds", "load before", "load after", ""],
                   [[number[s.name], s.title, num(r[s.name].get("seconds", 0), 0), r[s.name].get("load_before", "—"),
                     r[s.name].get("load_after", "—"), "**failed**" if r[s.name].get("failed") else ""]
                    for s in sections])
    head, above = [], []
    for s in sections:
        if r[s.name].get("failed"):
            head.append([f"{number[s.name]}. {s.title}", "**failed**", "—", "—", "**failed**"])
            continue
        rows, found = section_headline(s, r, number[s.name])
        head += rows
        above += found
    lines += ["## Headline", ""] + table(["figure", "measured", "floor / target", "ratio", "verdict"], head)
    lines += ["## Above target, and why", ""]
    lines += (above or ["Nothing: every figure meets its floor or target."]) + [""]
    for s in sections:
        lines += [f"## {number[s.name]}. {s.title}", ""]
        lines += section_failed(s.name, r[s.name]) if r[s.name].get("failed") else section_body(s, r)
    lines += ["## Method", "", METHOD]
    return "\n".join(lines)
