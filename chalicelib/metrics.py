"""The code's own metrics, in CloudWatch's embedded metric format (EMF): no
client, no request, no dependency. Counts and measurements are kept in memory
and written by `flush()` as one JSON log line per invocation (an API request,
a stream batch), from which CloudWatch Logs makes the metrics.

    metrics.count("MessagesSent")
    metrics.measure("FanoutLag", 180.0)          # milliseconds
    metrics.flush()                              # at the end of the invocation

Where they are counted: MessagesSent (services/messages.py), CopiesWritten and
FanoutLag (services/fanout.py), PushesSent / PushesGone / PushesFailed and
BusEntries (services/delivery.py), JobStepsFailed and JobsFailed (exports and
erasures: services/jobs.py, services/exports.py); flushed by the REST handler
(api/application.py) and the stream handler (stream/handler.py).

Lines are written to stdout on Lambda (CloudWatch Logs reads them there), or
when CHAT_METRICS=stdout; elsewhere (tests, make run) they are dropped. The
buffer is the process's: Lambda runs one invocation per process at a time, and
the fan-out's worker threads add to the same invocation's line."""

import json
import sys
import threading
import time
from collections import defaultdict

from chalicelib import config

NAMESPACE = "VoipbinChat"
MAX_VALUES = 100  # EMF: values of one metric in one document

_lock = threading.Lock()
_counts: dict[tuple, float] = defaultdict(float)
_values: dict[tuple, list[float]] = defaultdict(list)


def _key(name: str, unit: str, dimensions: dict[str, str]) -> tuple:
    return (name, unit, tuple(sorted(dimensions.items())))


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """Add to a count (summed over the invocation)."""
    with _lock:
        _counts[_key(name, "Count", dimensions)] += value


def measure(name: str, value: float, unit: str = "Milliseconds", **dimensions: str) -> None:
    """Record one value (each kept: CloudWatch computes the percentiles)."""
    with _lock:
        _values[_key(name, unit, dimensions)].append(float(value))


def documents(stage: str | None = None) -> list[dict]:
    """What has been counted since the last flush, as EMF documents (one per
    set of dimensions), and forget it."""
    with _lock:
        counts, values = dict(_counts), dict(_values)
        _counts.clear()
        _values.clear()
    stage = stage or config.load().stage or "local"
    grouped: dict[tuple, dict] = {}
    for (name, unit, dims), value in [*counts.items(), *values.items()]:
        document = grouped.setdefault(dims, {"Stage": stage, **dict(dims), "_metrics": []})
        document["_metrics"].append({"Name": name, "Unit": unit})
        document[name] = value if not isinstance(value, list) else value[:MAX_VALUES]
    out = []
    timestamp = int(time.time() * 1000)
    for dims, document in grouped.items():
        metric_list = document.pop("_metrics")
        out.append({"_aws": {"Timestamp": timestamp, "CloudWatchMetrics": [{
            "Namespace": NAMESPACE, "Dimensions": [["Stage", *(name for name, _ in dims)]],
            "Metrics": metric_list}]}, **document})
    return out


def flush() -> None:
    """Write what was counted as EMF lines (on Lambda, or CHAT_METRICS=stdout)."""
    lines = documents()
    if lines and config.load().metrics_to_stdout:
        sys.stdout.write("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
        sys.stdout.flush()
