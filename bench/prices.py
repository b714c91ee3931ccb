"""AWS list prices (us-east-1, US dollars), in one place, and the bill of what
was counted. Taken from each service's public pricing page; the bench does not
fetch them, so check them (and PRICES_DATE) before quoting a figure.

Each line of `bill()` is a count made by the bench times one of these prices;
nothing here is estimated except the Lambda durations, which are measured in
process against moto (see README, "Performance").
"""

import json
import math
from pathlib import Path

PRICES_DATE = "2024-11-01"  # DynamoDB's on-demand prices as cut that day; the others unchanged since
REGION = "us-east-1"
PRICES = {
    "dynamodb_write_unit": 0.625e-6,  # on-demand write request unit: 1 KB written, 2 in a transaction
    "dynamodb_read_unit": 0.125e-6,  # on-demand read request unit: 4 KB strongly read, 8 KB eventually
    "lambda_request": 0.20e-6,
    "lambda_gb_second": 0.0000166667,  # x86, first 6 billion GB-seconds a month
    "rest_request": 3.50e-6,  # API Gateway REST API, first 333 million a month
    "websocket_message": 1.00e-6,  # API Gateway websocket, per 32 KB of a message, first billion a month
    "bus_entry": 1.00e-6,  # EventBridge custom event, per 64 KB of an entry
    "data_out_gb": 0.09,  # data transfer out to the internet, after the first 100 GB a month
}
WEBSOCKET_UNIT = 32 * 1024
BUS_UNIT = 64 * 1024
# DynamoDB Streams reads made by a Lambda trigger are free; websocket connection minutes
# ($0.25 a million) are billed per connected agent over time, not per message: neither is here.

CHALICE_CONFIG = Path(__file__).resolve().parent.parent / ".chalice" / "config.json"


def lambda_memory_mb(function: str, stage: str = "prod") -> int:
    """The memory `chalice deploy` gives a function on a stage (.chalice/config.json)."""
    config = json.loads(CHALICE_CONFIG.read_text())
    stage_config = config["stages"][stage]
    own = stage_config.get("lambda_functions", {}).get(function, {})
    return own.get("lambda_memory_size", stage_config.get("lambda_memory_size",
                                                            config.get("lambda_memory_size", 128)))


def billed_seconds(durations: list[float]) -> float:
    """Lambda bills each invocation's duration rounded up to the millisecond."""
    return sum(math.ceil(seconds * 1000) / 1000 for seconds in durations)


def bill(counts: dict) -> dict:
    """Dollars per line item from the counts of one message (groups.py)."""
    gb_seconds = sum(billed_seconds(counts["lambda_seconds"][function]) * lambda_memory_mb(function) / 1024
                     for function in counts["lambda_seconds"])
    invocations = sum(len(durations) for durations in counts["lambda_seconds"].values())
    lines = {
        "DynamoDB writes": counts["write_units"] * PRICES["dynamodb_write_unit"],
        "DynamoDB reads": counts["read_units"] * PRICES["dynamodb_read_unit"],
        "Lambda requests": invocations * PRICES["lambda_request"],
        "Lambda GB-seconds": gb_seconds * PRICES["lambda_gb_second"],
        "REST requests": counts["rest_requests"] * PRICES["rest_request"],
        "websocket messages": counts["websocket_units"] * PRICES["websocket_message"],
        "bus entries": counts["bus_units"] * PRICES["bus_entry"],
        "data out": counts["bytes_pushed"] / 1024 ** 3 * PRICES["data_out_gb"],
    }
    return {**lines, "total": sum(lines.values())}
