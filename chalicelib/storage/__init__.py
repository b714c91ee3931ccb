"""Storage: the table, its PynamoDB models and key design. No business rules."""

from pynamodb.connection import Connection

from chalicelib import config
from chalicelib.storage.models import MODELS, TableItem

_connection: Connection | None = None


def configure(settings: config.Settings | None = None) -> None:
    """Point every model at the configured table and endpoint, and the files at their bucket.

    Every model class shares one connection (one botocore session and client
    per thread): PynamoDB would make one per class, each loading botocore's
    service description again, most of a cold start's first request."""
    from chalicelib.storage import clients, objects

    global _connection
    settings = settings or config.load()
    objects.configure(settings)
    for model in MODELS:
        model.Meta.table_name = settings.table_name
        model.Meta.region = settings.region
        model.Meta.host = settings.dynamodb_endpoint
        # PynamoDB's 15 s / 30 s and botocore's retries would outlast the API's
        # 29 s: our timeouts, and one attempt per call (storage/clients.py).
        model.Meta.connect_timeout_seconds = clients.CONNECT_TIMEOUT_SECONDS
        model.Meta.read_timeout_seconds = clients.READ_TIMEOUT_SECONDS
        model.Meta.max_retry_attempts = 0
        model._connection = None
    shared = TableItem._get_connection()  # every model's key schema and indexes are TableItem's
    for model in MODELS:
        model._connection = shared
    _connection = shared.connection


def connection() -> Connection:
    """The low-level connection, for transactions."""
    if _connection is None:
        configure()
    return _connection
