"""The JWT secret comes from the environment, SSM or Secrets Manager; never a default."""

import boto3
import pytest
from moto import mock_aws

from chalicelib import config
from chalicelib.auth.secret import load_secret


@pytest.fixture
def no_env_secret(monkeypatch):
    for name in ("CHAT_JWT_SECRET", "CHAT_JWT_SECRET_PARAMETER", "CHAT_JWT_SECRET_ID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_environment_secret_wins(no_env_secret):
    no_env_secret.setenv("CHAT_JWT_SECRET", "from-env")
    assert load_secret(config.load()) == "from-env"


def test_secret_from_ssm_secure_string(no_env_secret):
    with mock_aws():
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/chat/prod/jwt-secret", Value="from-ssm", Type="SecureString"
        )
        no_env_secret.setenv("CHAT_JWT_SECRET_PARAMETER", "/chat/prod/jwt-secret")
        assert load_secret(config.load()) == "from-ssm"


def test_secret_from_secrets_manager(no_env_secret):
    with mock_aws():
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="chat/jwt", SecretString="from-secrets-manager"
        )
        no_env_secret.setenv("CHAT_JWT_SECRET_ID", "chat/jwt")
        assert load_secret(config.load()) == "from-secrets-manager"


def test_no_secret_configured_is_an_error_not_a_default(no_env_secret):
    with pytest.raises(RuntimeError, match="no JWT secret"):
        load_secret(config.load())
