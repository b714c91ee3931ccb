"""Where the JWT secret comes from: the environment locally; in production
SSM Parameter Store (SecureString) or Secrets Manager, read once per Lambda
container, so the secret is never in the template or the repository."""

import functools
import os

from chalicelib import config


def load_secret(region: str) -> str:
    if os.environ.get("CHAT_JWT_SECRET"):
        return os.environ["CHAT_JWT_SECRET"]
    import boto3  # only here: the one read per container, kept out of every cold start's imports

    parameter = os.environ.get("CHAT_JWT_SECRET_PARAMETER")
    if parameter:
        ssm = boto3.client("ssm", region_name=region)
        return ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
    secret_id = os.environ.get("CHAT_JWT_SECRET_ID")
    if secret_id:
        secrets = boto3.client("secretsmanager", region_name=region)
        return secrets.get_secret_value(SecretId=secret_id)["SecretString"]
    raise RuntimeError(
        "no JWT secret: set CHAT_JWT_SECRET, CHAT_JWT_SECRET_PARAMETER (SSM) or CHAT_JWT_SECRET_ID (Secrets Manager)"
    )


@functools.lru_cache(maxsize=1)
def jwt_secret() -> str:
    """Read once per process (a Lambda container's life)."""
    return load_secret(config.load().region)
