"""Every measurement, one process each, then bench/RESULTS.md.

    .venv/bin/python bench/run_all.py            # all (about 8 minutes on 2 cores, more when the machine is busy)
    .venv/bin/python bench/run_all.py cost warm  # some; RESULTS.md then holds only those
    .venv/bin/python bench/run_all.py --list     # the sections, in order
    .venv/bin/python bench/run_all.py --render   # RESULTS.md again from bench/results.json

What runs, in which order and under which title comes from the registry in
bench/sections.py (a new section is a new module there, nothing else).

Sizes can be turned down for a quick look (the defaults are what RESULTS.md
reports): BENCH_GROWTH_SIZES=1000,100000, BENCH_GROUP_SIZES=2,10,100,1000,
BENCH_COLDSTART_RUNS=7, BENCH_WARM_ROUNDS=8, BENCH_WARM_PER_ROUND=40,
BENCH_LOAD_SECONDS=30, BENCH_MEMORY_REQUESTS=10000,
BENCH_MEMORY_REMOTE_REQUESTS=1000.
"""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from bench.report import render  # noqa: E402
from bench.sections import Section, all_sections  # noqa: E402


def load_average() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def run(section: Section, out: Path) -> dict:
    started = time.perf_counter()
    load_before = load_average()
    print(f"[bench] {section.name} ...", flush=True)
    try:
        done = subprocess.run([sys.executable, "-m", f"bench.{section.name}", str(out)], cwd=ROOT,
                              capture_output=True, text=True, timeout=section.timeout,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    except subprocess.TimeoutExpired:
        print(f"[bench] {section.name} timed out after {section.timeout} s", flush=True)
        return {"failed": True, "seconds": section.timeout, "error": f"timed out after {section.timeout} s",
                "load_before": load_before, "load_after": load_average()}
    seconds = time.perf_counter() - started
    loads = {"load_before": load_before, "load_after": load_average()}
    if done.returncode != 0 or not out.exists():
        print(f"[bench] {section.name} FAILED after {seconds:.0f} s\n{done.stderr[-4000:]}", flush=True)
        return {"failed": True, "seconds": seconds, "error": done.stderr[-4000:], **loads}
    print(f"[bench] {section.name} done in {seconds:.0f} s", flush=True)
    return {"failed": False, "seconds": seconds, "data": json.loads(out.read_text()), **loads}


def main() -> int:
    sections = all_sections()
    by_name = {section.name: section for section in sections}
    if sys.argv[1:] == ["--render"]:  # RESULTS.md again from the last run's bench/results.json
        results = json.loads((ROOT / "bench" / "results.json").read_text())
        (ROOT / "bench" / "RESULTS.md").write_text(render(results))
        return 0
    if sys.argv[1:] == ["--list"]:
        for section in sections:
            print(f"{section.name:12} {section.title}{'' if section.default else ' (only when named)'}")
        return 0
    unknown = [name for name in sys.argv[1:] if name not in by_name]
    if unknown:
        print(f"unknown measurement(s) {unknown}; choose from {[s.name for s in sections]}", file=sys.stderr)
        return 2
    named = set(sys.argv[1:])
    chosen = [s.name for s in sections if s.name in named] or [s.name for s in sections if s.default]
    started = time.perf_counter()
    results = {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": common.machine(), "load_before": load_average(), "chosen": chosen,
               "environment": {k: v for k, v in os.environ.items() if k.startswith("BENCH_")}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            results[name] = run(by_name[name], Path(tmp) / f"{name}.json")
    results["load_after"] = load_average()
    results["total_seconds"] = time.perf_counter() - started
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=1, default=str))
    try:
        text = render(results)
    except Exception:
        traceback.print_exc()
        return 1
    (ROOT / "bench" / "RESULTS.md").write_text(text)
    print(f"[bench] wrote bench/RESULTS.md in {results['total_seconds']:.0f} s", flush=True)
    return 1 if any(results[name].get("failed") for name in chosen) else 0


if __name__ == "__main__":
    sys.exit(main())
