"""`make rotate-secret STAGE=...`: a new JWT signing secret for a stage, without
logging anyone out.

    python infra/rotate_secret.py --stage prod

The current secret becomes the previous one, and a new random one the
current; the service accepts both (chalicelib/auth/secret.py) and reads them
again within 5 minutes. Tokens signed with the old secret keep working until
the next rotation; new tokens should be signed with the new one from now on.

Where the secrets are is the stage's (.chalice/config.json): an SSM
SecureString parameter (CHAT_JWT_SECRET_PARAMETER; the previous secret goes
to CHAT_JWT_PREVIOUS_SECRET_PARAMETER, by default the same name with
"-previous"), or a Secrets Manager secret (CHAT_JWT_SECRET_ID; its AWSCURRENT
version becomes AWSPREVIOUS, as Secrets Manager does when a value is put).
Honours AWS_PROFILE, AWS_REGION and AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from chalicelib.auth.secret import PREVIOUS_SUFFIX, key_id  # noqa: E402

SECRET_BYTES = 48  # 384 random bits, past HS256's 256


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def stage_environment(stage: str, config_path: Path = ROOT / ".chalice" / "config.json") -> dict[str, str]:
    config = json.loads(config_path.read_text())
    if stage not in config.get("stages", {}):
        raise SystemExit(f"no stage {stage!r} in {config_path} (stages: {', '.join(config.get('stages', {}))})")
    return {**config.get("environment_variables", {}), **config["stages"][stage].get("environment_variables", {})}


def rotate_parameter(ssm: Any, current: str, previous: str | None = None) -> str:
    """previous := current, then current := a new secret. Between the two puts
    both parameters hold the old secret, so no moment accepts less than before."""
    previous = previous or current + PREVIOUS_SUFFIX
    old = ssm.get_parameter(Name=current, WithDecryption=True)["Parameter"]["Value"]
    ssm.put_parameter(Name=previous, Value=old, Type="SecureString", Overwrite=True)
    fresh = new_secret()
    ssm.put_parameter(Name=current, Value=fresh, Type="SecureString", Overwrite=True)
    return fresh


def rotate_secret_version(secretsmanager: Any, secret_id: str) -> str:
    """A new AWSCURRENT version; Secrets Manager moves AWSPREVIOUS to the one it replaces."""
    fresh = new_secret()
    secretsmanager.put_secret_value(SecretId=secret_id, SecretString=fresh)
    return fresh


def rotate(stage: str, session: Any = None, config_path: Path = ROOT / ".chalice" / "config.json") -> str:
    """Rotate the stage's secret; returns a line saying what was done (never the secret)."""
    import boto3

    session = session or boto3.session.Session()
    env = stage_environment(stage, config_path)
    if env.get("CHAT_JWT_SECRET_PARAMETER"):
        name = env["CHAT_JWT_SECRET_PARAMETER"]
        previous = env.get("CHAT_JWT_PREVIOUS_SECRET_PARAMETER") or name + PREVIOUS_SUFFIX
        fresh = rotate_parameter(session.client("ssm"), name, previous)
        where = f"SSM parameter {name} (the one before it is now in {previous})"
    elif env.get("CHAT_JWT_SECRET_ID"):
        fresh = rotate_secret_version(session.client("secretsmanager"), env["CHAT_JWT_SECRET_ID"])
        where = f"Secrets Manager secret {env['CHAT_JWT_SECRET_ID']} (AWSCURRENT; the one before it is AWSPREVIOUS)"
    else:
        raise SystemExit(f"stage {stage}: neither CHAT_JWT_SECRET_PARAMETER nor CHAT_JWT_SECRET_ID is set in "
                         f"{config_path}; nothing to rotate")
    return (f"stage {stage}: a new secret (kid {key_id(fresh)}) in {where}. The service takes it within 5 minutes "
            f"and accepts tokens of the previous secret until the next rotation: rotate again only once those "
            f"have expired.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infra/rotate_secret.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    print(rotate(args.stage))
    return 0


if __name__ == "__main__":
    sys.exit(main())
