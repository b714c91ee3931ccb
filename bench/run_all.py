"""`make bench`: each section in its own process, then bench/results.json and
bench/RESULTS.md (bench/report.py fills bench/RESULTS.template.md).

    .venv/bin/python bench/run_all.py               # every section, about 5 minutes on 2 idle cores
    .venv/bin/python bench/run_all.py groups        # some; RESULTS.md then shows only those
    .venv/bin/python bench/run_all.py --render      # RESULTS.md again from bench/results.json

Sizes can be turned down for a quick look: BENCH_GROUP_SIZES=2,10,100,1000,
BENCH_COLDSTART_RUNS=7, BENCH_WS_MESSAGES=100.
"""

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import render  # noqa: E402

SECTIONS = {"budgets": 120, "groups": 900, "coldstart": 300, "ws_latency": 300}  # name: timeout in seconds


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def run(name: str, out: Path) -> dict:
    print(f"[bench] {name} ...", flush=True)
    started, load_before = time.perf_counter(), load()
    try:
        done = subprocess.run([sys.executable, "-m", f"bench.{name}", str(out)], cwd=ROOT, capture_output=True,
                              text=True, timeout=SECTIONS[name], env=dict(os.environ, PYTHONPATH=str(ROOT)))
        error = "" if done.returncode == 0 and out.exists() else done.stderr[-4000:]
    except subprocess.TimeoutExpired:
        error = f"timed out after {SECTIONS[name]} s"
    seconds = time.perf_counter() - started
    print(f"[bench] {name} {'FAILED: ' + error if error else 'done'} in {seconds:.0f} s", flush=True)
    return {"failed": bool(error), "error": error, "seconds": seconds, "load_before": load_before,
            "load_after": load(), "data": None if error else json.loads(out.read_text())}


def main() -> int:
    results_path = ROOT / "bench" / "results.json"
    if sys.argv[1:] == ["--render"]:
        (ROOT / "bench" / "RESULTS.md").write_text(render(json.loads(results_path.read_text())))
        return 0
    unknown = set(sys.argv[1:]) - set(SECTIONS)
    if unknown:
        print(f"unknown section(s) {sorted(unknown)}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    chosen = [name for name in SECTIONS if name in sys.argv[1:]] or list(SECTIONS)
    started = time.perf_counter()
    results = {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"}
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            results[name] = run(name, Path(tmp) / f"{name}.json")
    results["total_seconds"] = time.perf_counter() - started
    results_path.write_text(json.dumps(results, indent=1))
    (ROOT / "bench" / "RESULTS.md").write_text(render(results))
    print(f"[bench] wrote bench/RESULTS.md in {results['total_seconds']:.0f} s", flush=True)
    return 1 if any(results[name]["failed"] for name in chosen) else 0


if __name__ == "__main__":
    sys.exit(main())
