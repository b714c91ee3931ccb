"""Schemathesis against the running service, shared by tests/test_fuzz.py
(bounded, in `make test`) and fuzz/run_fuzz.py (the long `make fuzz` run).

Every operation of the served OpenAPI document is fuzzed with a plain
agent's token (permission 16) and with the customer's token, in positive
(schema-conforming) and negative (schema-violating) mode. Each response is
checked by schemathesis for:

- not_a_server_error: no 5xx;
- status_code_conformance: the status is documented for the operation;
- content_type_conformance: the Content-Type is the documented one;
- response_schema_conformance: the body matches the documented schema;

and by us for one more: a 200 never carries another customer's data.

Random UUIDs would only ever reach "404 not found", so ids in the path, the
query and the body are, in most cases, replaced by ids the service really
holds: seeded ones (a group chat of the agent's, one they are not in, a
normal chat, their chatrooms and someone else's, messages, copies), ids
harvested from every 200 the fuzzing gets back (so chats it creates are then
read, changed, posted into and deleted), and ids of another customer's
resources (which must stay 404). A generated value is only replaced where it
is a valid UUID, so negative cases keep the broken part schemathesis made.
"""

import json
import re
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException
from schemathesis import GenerationMode
from schemathesis.core.errors import SerializationError
from schemathesis.core.failures import FailureGroup

CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
POOL_CAP = 60  # newest ids kept per kind
PICKS = ("known", "preferred", "known", "preferred", "generated", "known", "preferred", "known")

# Which kind of id a parameter or body field names.
PATH_KINDS = {
    "chat_id": "chat", "chatroom_id": "chatroom", "chatmessage_id": "chatmessage",
    "chatroommessage_id": "chatroommessage", "participant_id": "agent", "file_id": "file",
}
QUERY_KINDS = {"chat_id": "chat", "chatroom_id": "chatroom", "owner_id": "agent"}
BODY_KINDS = {"chat_id": "chat", "chatroom_id": "chatroom", "owner_id": "agent", "participant_id": "agent"}


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and bool(UUID_RE.match(value))


@dataclass
class Finding:
    operation: str
    caller: str
    mode: str
    status: int | None
    problem: str
    reproduce: str

    def __str__(self) -> str:
        return (f"{self.operation} as {self.caller} ({self.mode}): status {self.status}\n"
                f"  {self.problem}\n  reproduce: {self.reproduce}")


@dataclass
class FuzzStats:
    cases: int = 0
    statuses: Counter = field(default_factory=Counter)
    per_operation: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    def merge(self, other: "FuzzStats") -> None:
        self.cases += other.cases
        self.statuses.update(other.statuses)
        self.per_operation.update(other.per_operation)
        self.skipped.update(other.skipped)
        self.findings.extend(other.findings)
        self.seconds += other.seconds

    def summary(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (f"{self.cases} cases in {self.seconds:.0f} s over {len(self.per_operation)} operation/caller/mode runs "
                f"(statuses {statuses}); findings: {len(self.findings)}")


@dataclass
class Caller:
    name: str
    customer_id: str
    token: str
    agent_id: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Pools:
    """Ids the service really holds, by kind; `foreign` ones belong to another customer."""

    def __init__(self):
        kinds = ("chat", "chatroom", "chatmessage", "chatroommessage", "agent", "file")
        self.ids: dict[str, list[str]] = {kind: [] for kind in kinds}
        self.members: dict[str, list[str]] = {}  # chat id -> its participants, as last seen
        self.page_tokens: list[str] = []  # next_page_token values the service issued

    def add(self, kind: str, value: Any) -> None:
        if kind in self.ids and is_uuid(value):
            pool = self.ids[kind]
            if value in pool:
                return
            pool.append(value)
            if len(pool) > POOL_CAP:
                del pool[len(pool) // 3]  # keep the seeded ones at the front

    def harvest(self, body: Any) -> None:
        """Remember the ids of every resource in a 200 body (one resource or a page)."""
        if isinstance(body, dict) and isinstance(body.get("result"), list):
            for item in body["result"]:
                self.harvest(item)
            token = body.get("next_page_token")
            if token and token not in self.page_tokens and len(self.page_tokens) < POOL_CAP:
                self.page_tokens.append(token)
            return
        if not isinstance(body, dict) or "id" not in body:
            return
        if "content_type" in body:  # a file (its owner may be the customer: not an agent)
            self.add("file", body["id"])
            return
        if "messagechat_id" in body:
            self.add("chatroommessage", body["id"])
            self.add("chatmessage", body["messagechat_id"])
            self.add("chatroom", body.get("chatroom_id"))
        elif "source" in body:
            self.add("chatmessage", body["id"])
            self.add("chat", body.get("chat_id"))
        elif "chat_id" in body:
            self.add("chatroom", body["id"])
            self.add("chat", body["chat_id"])
        else:
            self.add("chat", body["id"])
            if isinstance(body.get("participant_ids"), list):
                self.members[body["id"]] = list(body["participant_ids"])
        for agent in [body.get("owner_id"), *(body.get("participant_ids") or [])]:
            self.add("agent", agent)


def _customer_ids(body: Any):
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "customer_id" and isinstance(value, str):
                yield value
            else:
                yield from _customer_ids(value)
    elif isinstance(body, list):
        for value in body:
            yield from _customer_ids(value)


class Fuzzer:
    def __init__(self, base_url: str, callers: list[Caller], pools: Pools, *, max_examples: int = 10,
                 seed: int = 20240404, modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
                 request_timeout: float = 30.0, log=print):
        """`base_url` is the origin (http://host:port); the document's paths carry /v1.0."""
        self.base_url = base_url.rstrip("/")
        self.callers = callers
        self.pools = pools
        self.max_examples = max_examples
        self.seed = seed
        self.modes = list(modes)
        self.request_timeout = request_timeout
        self.log = log
        self.schema = schemathesis.openapi.from_url(f"{self.base_url}/v1.0/openapi.json")
        # Tokens come from us, never generated: the fuzzing is about what an authenticated caller may send.
        self.schema.config.generation.update(with_security_parameters=False)
        self.session = requests.Session()
        self.operations = {f"{op.method.upper()} {op.path}": op for op in
                           (result.ok() for result in self.schema.get_all_operations())}

    # ---- substituting real ids (and making positive cases plausible) --------------------
    # Draws have a fixed shape (an index into a pool that grows, not sampled_from(pool)), so
    # hypothesis sees the same strategy on every example.

    @staticmethod
    def _choose(data, options: list, label: str):
        # hypothesis favours small integers; scrambled, every index is about as likely
        drawn = data.draw(st.integers(0, 2**32 - 1), label=label)
        return options[zlib.crc32(drawn.to_bytes(4, "big")) % len(options)]

    def _pick(self, data, kind: str, current: Any, prefer: list[str] | None = None) -> Any:
        """Mostly a known id of this kind (from `prefer` if given), sometimes the generated value."""
        choice = data.draw(st.sampled_from(PICKS), label=f"{kind} from")
        pool = (prefer if prefer and choice == "preferred" else None) or self.pools.ids.get(kind) or []
        if not pool or not is_uuid(current) or choice == "generated":
            return current
        return self._choose(data, pool, kind)

    def _with_real_ids(self, data, case, positive: bool) -> None:
        path = case.path_parameters or {}
        for name, value in list(path.items()):
            if name in PATH_KINDS and name != "participant_id":
                path[name] = self._pick(data, PATH_KINDS[name], value)
        members = self.pools.members.get(path.get("chat_id"), [])
        if "participant_id" in path:
            path["participant_id"] = self._pick(data, "agent", path["participant_id"], members)
        for name, value in list((case.query or {}).items()):
            if name in QUERY_KINDS:
                case.query[name] = self._pick(data, QUERY_KINDS[name], value)
        if positive and isinstance(case.query, dict) and "page_token" in case.query:
            choice = data.draw(st.integers(0, 3), label="page_token: 0 generated, 1 none, 2-3 issued")
            if choice == 1 or (choice > 1 and not self.pools.page_tokens):
                del case.query["page_token"]
            elif choice > 1:
                case.query["page_token"] = self._choose(data, self.pools.page_tokens, "page_token")
        body = case.body
        if not isinstance(body, dict):
            return
        ids = body.get("participant_ids")
        if isinstance(ids, list) and all(is_uuid(i) for i in ids) and self.pools.ids["agent"]:
            count = data.draw(st.integers(0, 6), label="known participants")
            known = [self._choose(data, self.pools.ids["agent"], "agent") for _ in range(count)]
            keep = data.draw(st.integers(0, len(ids)), label="generated participants kept")
            body["participant_ids"] = known + ids[:keep]
            if is_uuid(body.get("owner_id")) and body["participant_ids"] and data.draw(st.booleans(), label="owner"):
                body["owner_id"] = self._choose(data, body["participant_ids"], "owner")
        for name, kind in BODY_KINDS.items():
            if name in body and not (name == "owner_id" and "participant_ids" in body):
                prefer = members if name in ("owner_id", "participant_id") else None
                body[name] = self._pick(data, kind, body[name], prefer)
        if positive and data.draw(st.booleans(), label="make it plausible"):
            self._plausible(body)

    @staticmethod
    def _plausible(body: dict) -> None:
        """Rules the document cannot state (they span fields): what positive cases mostly
        break. Applied to half of them, so the other half still probe the rules."""
        if "chat_id" in body or "chatroom_id" in body:  # a message: text, no medias (they must match their type)
            body.pop("medias", None)
            if not isinstance(body.get("text"), str) or not body["text"]:
                body["text"] = "fuzz"
        if set(body) <= {"name", "detail"} and not any(isinstance(v, str) for v in body.values()):
            body["name"] = "fuzz"  # a change of name, detail or both
        if "participant_ids" in body and body.get("type") == "normal" and len(set(body["participant_ids"])) != 2:
            body["type"] = "group"
        ids = body.get("participant_ids")
        if isinstance(ids, list) and ids and body.get("owner_id") not in ids and "owner_id" in body:
            body["owner_id"] = ids[0]

    # ---- running ----------------------------------------------------------------------

    def run(self, operations: list[str] | None = None) -> FuzzStats:
        total = FuzzStats()
        for label in operations or sorted(self.operations):
            for caller in self.callers:
                for mode in self.modes:
                    stats = self.run_one(label, caller, mode)
                    self.log(f"  {label:55} {caller.name:8} {mode.value:8} {stats.cases:5} cases "
                             f"{dict(stats.statuses)}")
                    total.merge(stats)
        return total

    def run_one(self, label: str, caller: Caller, mode: GenerationMode) -> FuzzStats:
        operation = self.operations[label]
        stats = FuzzStats()
        key = f"{label} {caller.name} {mode.value}"
        strategy = operation.as_strategy(generation_mode=mode)

        @hypothesis_seed(self.seed ^ zlib.crc32(key.encode()))  # fixed, but its own for each run
        @settings(max_examples=self.max_examples, database=None, deadline=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
                  print_blob=False)
        @given(data=st.data())
        def fuzz(data):
            case = data.draw(strategy, label="case")
            self._with_real_ids(data, case, positive=mode == GenerationMode.POSITIVE)
            self._call(case, caller, mode, label, stats, key)

        started = time.monotonic()
        try:
            fuzz()
        except HypothesisException as error:  # e.g. nothing can be generated in negative mode
            stats.skipped[f"{key}: {type(error).__name__}"] += 1
        stats.seconds = time.monotonic() - started
        return stats

    def _call(self, case, caller: Caller, mode, label, stats: FuzzStats, key: str) -> None:
        try:
            response = case.call(base_url=self.base_url, session=self.session, headers=caller.headers,
                                 timeout=self.request_timeout)
        except SerializationError:
            stats.skipped[f"{key}: body not serializable"] += 1
            return
        except requests.RequestException as error:
            stats.cases += 1
            stats.findings.append(Finding(label, caller.name, mode.value, None, f"no response: {error!r}",
                                          self._curl(case, caller)))
            return
        stats.cases += 1
        stats.per_operation[key] += 1
        stats.statuses[response.status_code] += 1
        checks = [getattr(schemathesis.checks, name) for name in CHECK_NAMES]
        try:
            case.validate_response(response, checks=checks, headers=caller.headers,
                                   transport_kwargs={"base_url": self.base_url})
        except FailureGroup as group:
            titles = "; ".join(sorted({f"{f.title}: {f.message}"[:600] for f in group.exceptions}))
            stats.findings.append(Finding(label, caller.name, mode.value, response.status_code, titles,
                                          self._curl(case, caller)))
            return
        if response.status_code == 200:
            try:
                body = response.json()
            except ValueError:
                return
            foreign = {c for c in _customer_ids(body) if c != caller.customer_id}
            if foreign:
                stats.findings.append(Finding(label, caller.name, mode.value, 200,
                                              f"another customer's data in the response: {sorted(foreign)}",
                                              self._curl(case, caller)))
            self.pools.harvest(body)

    def _curl(self, case, caller: Caller) -> str:
        try:
            command = case.as_curl_command(headers={"Authorization": "Bearer $TOKEN"}, base_url=self.base_url)
        except Exception:  # noqa: BLE001 - best effort
            command = f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}"
        return f"[{caller.name} token] {command}"


# ---- the data the fuzzing starts from -----------------------------------------------

def seed_tenant(api_for, customer_id: str) -> tuple[Pools, str]:
    """Chats and messages of one customer through the API itself. `api_for(agent_id=None, permission=16)`
    returns something with .call(method, path, body) -> (status, body). Returns the pools and the agent
    id of the plain agent whose token the fuzzing uses."""
    pools = Pools()
    agent, b, c, d = (str(uuid.uuid4()) for _ in range(4))
    customer = api_for()
    me = api_for(agent_id=agent)

    def ok(result):
        status, body = result
        assert status == 200, (status, body)
        pools.harvest(body)
        return body

    mine = ok(customer.call("POST", "/chats", {"type": "group", "owner_id": agent, "participant_ids": [agent, b, c],
                                               "name": "fuzz mine", "detail": "owned by the fuzzing agent"}))
    theirs = ok(customer.call("POST", "/chats", {"type": "group", "owner_id": b, "participant_ids": [agent, b, d],
                                                 "name": "fuzz theirs"}))
    outside = ok(customer.call("POST", "/chats", {"type": "group", "owner_id": c, "participant_ids": [b, c, d],
                                                  "name": "fuzz without the agent"}))
    ok(customer.call("POST", "/chats", {"type": "normal", "owner_id": agent, "participant_ids": [agent, d]}))
    for chat in (mine, theirs, outside):
        ok(customer.call("POST", "/chatmessages", {"chat_id": chat["id"], "text": f"hello {chat['name']}",
                                                   "source": {"type": "agent", "target": chat["owner_id"]}}))
    for room in ok(me.call("GET", "/chatrooms"))["result"]:
        ok(me.call("POST", "/chatroommessages", {"chatroom_id": room["id"], "text": "from the fuzzing agent"}))
    for owner in (b, c, d):
        ok(customer.call("GET", f"/chatrooms?owner_id={owner}"))
    for caller in (me, customer):
        ok(caller.call("POST", "/files", {"name": "fuzz.png", "content_type": "image/png", "size": 100}))
    return pools, agent


def seeded_fuzzer(server, **kwargs) -> Fuzzer:
    """A Fuzzer for a tests.local_server.LocalServer: one customer with seeded data, a second one whose
    ids are mixed into the pools (they must stay 404), a plain agent's token and the customer's."""
    customer_id, foreign_id = str(uuid.uuid4()), str(uuid.uuid4())

    def api_for(customer):
        return lambda agent_id=None, permission=16: server.api(customer, agent_id, "fuzz agent", permission)

    pools, agent = seed_tenant(api_for(customer_id), customer_id)
    foreign, _ = seed_tenant(api_for(foreign_id), foreign_id)
    for kind, ids in foreign.ids.items():
        for value in ids[:2]:
            pools.add(kind, value)
    callers = [
        Caller("agent", customer_id, server.token(customer_id, agent, "fuzz agent", 16), agent),
        Caller("customer", customer_id, server.token(customer_id)),
    ]
    return Fuzzer(server.base_url, callers, pools, **kwargs)


def describe(findings: list[Finding], limit: int = 20) -> str:
    unique: dict[tuple, Finding] = {}
    for finding in findings:
        unique.setdefault((finding.operation, finding.status, finding.problem[:120]), finding)
    lines = [str(f) for f in list(unique.values())[:limit]]
    return f"{len(findings)} findings, {len(unique)} distinct:\n" + "\n".join(lines)


def as_json(stats: FuzzStats) -> str:
    return json.dumps({"cases": stats.cases, "statuses": dict(stats.statuses), "findings": len(stats.findings),
                       "seconds": round(stats.seconds, 1)})
