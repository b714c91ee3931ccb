"""One cold start, in a fresh process: import the app, serve one API Gateway
event, report wall times and peak RSS as one JSON line.

    python -m bench.coldstart_child {ours|ours-packaged|bare} EVENT.json
"""

import json
import sys
import time

START = time.perf_counter()
START_CPU = time.process_time()


class _NotInLambdaZip:
    """'ours-packaged': modules that are in this venv (moto's dependencies)
    but not in the deployment zip cannot be imported, as on Lambda."""

    ABSENT = ("cryptography",)

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the deployment package)")
        return None


def peak_rss_mb() -> float:
    """VmHWM: the peak RSS of this process's own memory. (ru_maxrss also
    counts the parent's pages this process had between fork and exec, so
    after a fork from a big parent it reports the parent's size.)"""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ru_maxrss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    variant, event_path = sys.argv[1], sys.argv[2]
    with open(event_path) as f:
        event = json.load(f)
    if variant == "ours-packaged":
        sys.meta_path.insert(0, _NotInLambdaZip())
    begin, begin_cpu = time.perf_counter(), time.process_time()
    if variant == "bare":
        from bench.bare_app import app
    else:
        from app import app
    imported, imported_cpu = time.perf_counter(), time.process_time()
    response = app(event, None)
    served, served_cpu = time.perf_counter(), time.process_time()

    print(json.dumps({
        "variant": variant, "status": response["statusCode"],
        "startup_seconds": begin - START, "import_seconds": imported - begin,
        "first_request_seconds": served - imported, "total_seconds": served - begin,
        "import_cpu_seconds": imported_cpu - begin_cpu, "first_request_cpu_seconds": served_cpu - imported_cpu,
        "total_cpu_seconds": served_cpu - begin_cpu,
        "peak_rss_mb": peak_rss_mb(), "ru_maxrss_mb": ru_maxrss_mb(),
        "modules": len(sys.modules),
    }))


if __name__ == "__main__":
    main()
