"""`make bench` is not part of `make test`: this keeps it running against the code
as it is. Its group section at 2 participants, in a process of its own as
bench/run_all.py runs it, then the report from what it wrote. No figure is
checked here (times, bytes and dollars are the bench's to report), only that
the section measured what it says it measures."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_group_section_counts_a_message_and_the_report_shows_its_bill(tmp_path):
    out = tmp_path / "groups.json"
    subprocess.run([sys.executable, "-m", "bench.groups", str(out)], cwd=ROOT, check=True, capture_output=True,
                   timeout=300, env=dict(os.environ, BENCH_GROUP_SIZES="2", PYTHONPATH=str(ROOT)))
    data = json.loads(out.read_text())
    [two] = data["sizes"]
    assert two["latency"]["members_pushed"] == 2  # each connected participant heard messagechat_created
    assert two["send"]["requests"] and two["stream"]["invocations"] >= 1
    assert two["counts"]["write_units"] > 0 and two["counts"]["websocket_units"] >= 2
    bill = two["bill"]
    assert sum(value for line, value in bill.items() if line != "total") == bill["total"] > 0

    from bench.report import render

    section = {"failed": False, "error": "", "seconds": 1, "load_before": "0", "load_after": "0", "data": data}
    text = render({"date": "today", "machine": "here", "total_seconds": 1, "groups": section})
    assert "| **total** |" in text and "cost of a message to 10" not in text  # measured at 2 only
