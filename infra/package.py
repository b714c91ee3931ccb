"""`make package`: the deployable artifacts of one stage, built offline.

    python infra/package.py --stage prod     # -> build/prod/sam.json + build/prod/deployment.zip

Runs `chalice package --merge-template infra/resources-<stage>.json`. Chalice
builds the zip by shelling out to pip (`pip download -r requirements.txt`, then
`pip download --platform manylinux... --only-binary=:all:` for what has no
Lambda-compatible wheel, pydantic-core among them), passing on its own
environment. Here that environment sends pip to the wheelhouse that `make`
fills while setting up (build/wheelhouse: manylinux wheels for Lambda's Python,
see the Makefile) and to no index; anything that still tried the network would
meet a closed port on loopback instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = ROOT / "build" / "wheelhouse"
WHEELHOUSE_COMPLETE = ".complete"  # written by the Makefile when both downloads succeeded
CLOSED_PORT = "http://127.0.0.1:9"


def require_wheelhouse(wheelhouse: Path = WHEELHOUSE) -> None:
    if not (wheelhouse / WHEELHOUSE_COMPLETE).exists():
        raise RuntimeError(f"no wheelhouse at {wheelhouse}: run `make wheelhouse` (it downloads from PyPI once)")


def pip_env(wheelhouse: Path = WHEELHOUSE, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for Chalice's pip: the wheelhouse, no index. `make deploy`
    runs `chalice deploy` with it (AWS reachable as usual)."""
    env = dict(os.environ if base is None else base)
    env.update(
        PIP_CONFIG_FILE=os.devnull,  # not this machine's pip configuration (other indexes, find-links)
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheelhouse),
    )
    return env


def offline_env(wheelhouse: Path = WHEELHOUSE, base: dict[str, str] | None = None) -> dict[str, str]:
    """pip_env, and nothing else reachable: `make package` needs no network and no AWS account."""
    env = pip_env(wheelhouse, base)
    for name in ("NO_PROXY", "no_proxy", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    env.update(
        HTTP_PROXY=CLOSED_PORT,
        HTTPS_PROXY=CLOSED_PORT,
        http_proxy=CLOSED_PORT,
        https_proxy=CLOSED_PORT,
        # Packaging needs no AWS account. Chalice makes a botocore client only to
        # learn the region's service principal, and botocore without credentials
        # would ask the EC2 metadata service for some.
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ACCESS_KEY_ID="packaging-needs-no-credentials",
        AWS_SECRET_ACCESS_KEY="packaging-needs-no-credentials",
        AWS_DEFAULT_REGION=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1",
    )
    return env


def package(stage: str, out_dir: Path, project_dir: Path = ROOT, wheelhouse: Path = WHEELHOUSE,
            merge_template: Path | None = None, debug: bool = False) -> subprocess.CompletedProcess:
    """Write out_dir/sam.json and out_dir/deployment.zip; raise if Chalice fails."""
    require_wheelhouse(wheelhouse)
    merge_template = merge_template or ROOT / "infra" / f"resources-{stage}.json"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    chalice = Path(sys.executable).parent / "chalice"
    command = [str(chalice), *(["--debug"] if debug else []), "--project-dir", str(project_dir),
               "package", "--stage", stage, "--merge-template", str(merge_template), str(out_dir)]
    result = subprocess.run(command, env=offline_env(wheelhouse), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"chalice package failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", type=Path, help="default: build/<stage>")
    args = parser.parse_args(argv)
    out_dir = args.out or ROOT / "build" / args.stage
    package(args.stage, out_dir)
    size = (out_dir / "deployment.zip").stat().st_size
    print(f"{out_dir.relative_to(ROOT) if out_dir.is_relative_to(ROOT) else out_dir}: "
          f"sam.json, deployment.zip ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
