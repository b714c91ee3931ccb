"""Where the JWT secret comes from: the environment locally; in production
SSM Parameter Store (SecureString) or Secrets Manager, read once per Lambda
container, so the secret is never in the template or the repository."""

import functools

from chalicelib import config


def load_secret(settings: config.Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    import boto3  # only here: the one read per container, kept out of every cold start's imports

    from chalicelib.storage.clients import client_config  # timeouts under the API's budget

    if settings.jwt_secret_parameter:
        ssm = boto3.client("ssm", region_name=settings.region, config=client_config())
        return ssm.get_parameter(Name=settings.jwt_secret_parameter, WithDecryption=True)["Parameter"]["Value"]
    if settings.jwt_secret_id:
        secrets = boto3.client("secretsmanager", region_name=settings.region, config=client_config())
        return secrets.get_secret_value(SecretId=settings.jwt_secret_id)["SecretString"]
    raise RuntimeError(
        "no JWT secret: set CHAT_JWT_SECRET, CHAT_JWT_SECRET_PARAMETER (SSM) or CHAT_JWT_SECRET_ID (Secrets Manager)"
    )


@functools.lru_cache(maxsize=1)
def jwt_secret() -> str:
    """Read once per process (a Lambda container's life)."""
    return load_secret(config.load())
