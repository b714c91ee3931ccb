"""Every measurement of issue 7, one process each, then bench/RESULTS.md.

    .venv/bin/python bench/run_all.py            # all (6 to 9 minutes on 2 cores, with the machine to itself or not)
    .venv/bin/python bench/run_all.py cost warm  # some; RESULTS.md then holds only those
    .venv/bin/python bench/run_all.py --keep load large_group  # some again; the others' last figures kept
    .venv/bin/python bench/run_all.py --render   # RESULTS.md again from bench/results.json

Sizes can be turned down for a quick look (the defaults are what RESULTS.md
reports): BENCH_GROWTH_SIZES=1000,100000, BENCH_COLDSTART_RUNS=7,
BENCH_WARM_ROUNDS=8, BENCH_WARM_PER_ROUND=40, BENCH_LOAD_SECONDS=30,
BENCH_MEMORY_REQUESTS=10000, BENCH_MEMORY_REMOTE_REQUESTS=1000, BENCH_LARGE_GROUP_SIZE=1000.
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

MEASUREMENTS = ("cost", "growth", "fanout", "coldstart", "warm", "load", "memory", "large_group")
TIMEOUT = 900


def load_average() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def run(name: str, out: Path) -> dict:
    started = time.perf_counter()
    print(f"[bench] {name} ...", flush=True)
    done = subprocess.run([sys.executable, "-m", f"bench.{name}", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    seconds = time.perf_counter() - started
    if done.returncode != 0 or not out.exists():
        print(f"[bench] {name} FAILED after {seconds:.0f} s\n{done.stderr[-4000:]}", flush=True)
        return {"failed": True, "seconds": seconds, "error": done.stderr[-4000:]}
    print(f"[bench] {name} done in {seconds:.0f} s", flush=True)
    return {"failed": False, "seconds": seconds, "data": json.loads(out.read_text())}


def main() -> int:
    if sys.argv[1:] == ["--render"]:  # RESULTS.md again from the last run's bench/results.json
        results = json.loads((ROOT / "bench" / "results.json").read_text())
        (ROOT / "bench" / "RESULTS.md").write_text(render(results))
        return 0
    arguments = sys.argv[1:]
    keep = "--keep" in arguments
    arguments = [name for name in arguments if name != "--keep"]
    chosen = [name for name in arguments if name in MEASUREMENTS] or list(MEASUREMENTS)
    unknown = [name for name in arguments if name not in MEASUREMENTS]
    if unknown:
        print(f"unknown measurement(s) {unknown}; choose from {MEASUREMENTS}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    fresh = {"machine": common.machine(), "environment": {k: v for k, v in os.environ.items()
                                                          if k.startswith("BENCH_")}}
    if keep:  # the last run's figures, with these measured again (each keeps the date it was measured)
        results = json.loads((ROOT / "bench" / "results.json").read_text())
        for name in results["chosen"]:
            results[name].setdefault("date", results["date"])
        results["chosen"] = [name for name in MEASUREMENTS if name in results["chosen"] or name in chosen]
        results.setdefault("again", []).append({"date": now, "chosen": chosen, "load_before": load_average(),
                                                **fresh})
    else:
        results = {"date": now, "load_before": load_average(), "chosen": chosen, **fresh}
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            try:
                results[name] = run(name, Path(tmp) / f"{name}.json")
            except subprocess.TimeoutExpired:
                results[name] = {"failed": True, "seconds": TIMEOUT, "error": f"timed out after {TIMEOUT} s"}
            if keep:
                results[name]["date"] = now
    if keep:
        results["again"][-1].update(load_after=load_average(), total_seconds=time.perf_counter() - started)
    else:
        results["load_after"] = load_average()
        results["total_seconds"] = time.perf_counter() - started
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=1, default=str))
    try:
        text = render(results)
    except Exception:
        traceback.print_exc()
        return 1
    (ROOT / "bench" / "RESULTS.md").write_text(text)
    print(f"[bench] wrote bench/RESULTS.md in {time.perf_counter() - started:.0f} s", flush=True)
    return 1 if any(results[name].get("failed") for name in chosen) else 0


if __name__ == "__main__":
    sys.exit(main())
