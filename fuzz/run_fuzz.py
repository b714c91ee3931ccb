"""The long fuzz run (`make fuzz`): schemathesis against the `make run` server.

    .venv/bin/python -m fuzz.run_fuzz --max-examples 500
    .venv/bin/python -m fuzz.run_fuzz --max-examples 50 --operation "POST /v1.0/chats" --seed 7
    .venv/bin/python -m fuzz.run_fuzz --cli   # also schemathesis's own CLI: examples, coverage, fuzzing phases

Starts the server as a subprocess on a free port with its own embedded
DynamoDB, seeds two customers, fuzzes every operation with a plain agent's
token and the customer's token in positive and negative mode (fuzz/harness.py),
prints how many cases it tried and every finding with a request to reproduce
it, and exits 1 if there was any.
"""

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz.harness import describe, seeded_fuzzer  # noqa: E402
from tests.local_server import LocalServer  # noqa: E402

CLI_CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def run_cli(server, fuzzer, max_examples: int, seed: int, workdir: str) -> tuple[int, int]:
    """schemathesis's CLI once per token; returns (cases generated, exit codes != 0)."""
    generated, failed = 0, 0
    for caller in fuzzer.callers:
        command = [
            str(Path(sys.executable).parent / "schemathesis"), "run", f"{server.base}/openapi.json",
            "-H", f"Authorization: Bearer {caller.token}", "--checks", CLI_CHECKS,
            "--phases", "examples,coverage,fuzzing", "--max-examples", str(max_examples), "--seed", str(seed),
            "--generation-with-security-parameters", "false", "--workers", "2", "--no-color",
        ]
        print(f"\n$ schemathesis run ... ({caller.name} token)", flush=True)
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)  # its cache goes there
        output = result.stdout + result.stderr
        print(output[-6000:])
        match = re.search(r"(\d+) generated", output)
        generated += int(match.group(1)) if match else 0
        failed += result.returncode != 0
    return generated, failed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=100,
                        help="cases per operation, caller and mode (default 100)")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random, printed)")
    parser.add_argument("--operation", action="append", help="only this one, e.g. 'POST /v1.0/chats' (repeatable)")
    parser.add_argument("--cli", action="store_true",
                        help="also run the schemathesis CLI (its coverage phase: boundaries, missing fields, "
                             "methods the document does not list)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)

    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="chat-fuzz-")
    with LocalServer() as server:
        print(f"server on {server.base}; seed {seed}; {args.max_examples} examples per operation, caller and mode",
              flush=True)
        fuzzer = seeded_fuzzer(server, max_examples=args.max_examples, seed=seed,
                               log=lambda line: print(line, flush=True))
        stats = fuzzer.run(args.operation)
        alive = server.process.poll() is None
        cli_cases, cli_failed = run_cli(server, fuzzer, args.max_examples, seed, workdir) if args.cli else (0, 0)
        log = server.output()

    print(f"\nfuzz: {stats.summary()}")
    if args.cli:
        print(f"fuzz: the schemathesis CLI generated {cli_cases} more cases ({cli_failed} runs with failures)")
    print(f"fuzz: {stats.cases + cli_cases} cases in all, {time.monotonic() - started:.0f} s")
    if stats.skipped:
        print("skipped:", dict(stats.skipped))
    tracebacks = log.count("Traceback (most recent call last)")
    if tracebacks:
        (Path(workdir) / "server.log").write_text(log)
        print(f"the server logged {tracebacks} tracebacks (all its output: {workdir}/server.log); the last:\n"
              f"{log[log.rfind('Traceback (most recent call last)') - 300:][:5000]}")
    if stats.findings:
        print(describe(stats.findings, limit=50))
    if not alive:
        print("the server died during the run:\n" + log[-4000:])
    return 1 if stats.findings or cli_failed or not alive else 0


if __name__ == "__main__":
    sys.exit(main())
