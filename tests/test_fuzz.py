"""Bounded schemathesis fuzzing of every operation, against the `make run`
server in a subprocess (the long run is fuzz/run_fuzz.py, `make fuzz`).

Each operation is fuzzed with a plain agent's token (permission 16) and the
customer's token, positive and negative, FUZZ_EXAMPLES cases each, with a fixed
hypothesis seed; see fuzz/harness.py for the checks and how real ids are fed in.
"""

import os
import urllib.error
import urllib.request

import pytest

import app as chat_app
from chalicelib.api.openapi import build_document
from fuzz.harness import Fuzzer, describe, seeded_fuzzer
from tests.local_server import LocalServer

FUZZ_EXAMPLES = int(os.environ.get("CHAT_FUZZ_EXAMPLES", "10"))
FUZZ_SEED = 4
# Schemathesis leaves out the document's own URL (it loads the schema from it); everything else is fuzzed.
DOCUMENT = "GET /v1.0/openapi.json"
OPERATIONS = sorted(
    f"{method.upper()} {path}" for path, methods in build_document(chat_app.app)["paths"].items() for method in methods
    if f"{method.upper()} {path}" != DOCUMENT
)
TOTALS = {"cases": 0, "operations": 0}
# Operations that take no input at all (no parameter, no body): one case per caller, and no negative one.
NO_INPUT = {
    f"{method.upper()} {path}" for path, methods in build_document(chat_app.app)["paths"].items()
    for method, operation in methods.items() if not operation.get("parameters") and "requestBody" not in operation
}


@pytest.fixture(scope="module")
def fuzz_server():
    with LocalServer() as server:
        yield server


@pytest.fixture(scope="module")
def fuzzer(fuzz_server, request) -> Fuzzer:
    fuzzer = seeded_fuzzer(fuzz_server, max_examples=FUZZ_EXAMPLES, seed=FUZZ_SEED, log=lambda line: None)
    yield fuzzer
    if TOTALS["cases"]:
        report(request, f"fuzz: {TOTALS['cases']} cases over {TOTALS['operations']} operations "
                        f"(agent and customer tokens, positive and negative), seed {FUZZ_SEED}")


def report(request, line: str) -> None:
    """A line on the terminal even under output capture (the counts are quoted from it)."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{line}")


def test_the_served_document_is_the_one_fuzzed(fuzzer):
    """Every operation of the served document has a test below, and nothing else does."""
    assert sorted(fuzzer.operations) == OPERATIONS


@pytest.mark.parametrize("operation", OPERATIONS)
def test_fuzz_operation(fuzzer, fuzz_server, operation):
    stats = fuzzer.run([operation])
    TOTALS["cases"] += stats.cases
    TOTALS["operations"] += 1
    assert not stats.findings, describe(stats.findings)
    # Both callers, both modes: most examples reach the server (a few may not be generable).
    assert stats.cases >= (2 if operation in NO_INPUT else FUZZ_EXAMPLES * 2), (stats.summary(), stats.skipped)
    assert fuzz_server.process.poll() is None, fuzz_server.output()


def test_the_server_logged_no_error_while_fuzzed(fuzzer, fuzz_server):
    """Runs after the fuzzing: no request failed inside the service and the stream
    handler never failed a record (nothing was retried, nothing given up)."""
    log = fuzz_server.output()
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert not errors, "\n".join(errors[:20]) + "\n" + log[-4000:]


@pytest.mark.parametrize("method", ["PATCH", "TRACE", "PROPFIND"])
def test_undocumented_methods_get_a_4xx_not_a_5xx(fuzz_server, method):
    """What schemathesis's coverage phase sends (`schemathesis run --phases coverage`)."""
    request = urllib.request.Request(f"{fuzz_server.base}/chats", method=method)
    try:
        status = urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as error:
        status = error.code
    assert 400 <= status < 500, status
