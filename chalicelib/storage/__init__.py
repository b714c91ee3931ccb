"""Storage: the table, its PynamoDB models and key design. No business rules."""

from pynamodb.connection import Connection

from chalicelib import config
from chalicelib.storage.models import MODELS

_connection: Connection | None = None


def configure(settings: config.Settings | None = None) -> None:
    """Point every model at the configured table and endpoint, and the files at their bucket."""
    from chalicelib.storage import objects

    global _connection
    settings = settings or config.load()
    objects.configure(settings)
    for model in MODELS:
        model.Meta.table_name = settings.table_name
        model.Meta.region = settings.region
        model.Meta.host = settings.dynamodb_endpoint
        model._connection = None
    _connection = Connection(region=settings.region, host=settings.dynamodb_endpoint)


def connection() -> Connection:
    """The low-level connection, for transactions."""
    if _connection is None:
        configure()
    return _connection
