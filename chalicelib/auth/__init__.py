"""Authentication: a token from the request to a Principal."""

from chalicelib import config
from chalicelib.auth.principal import Principal
from chalicelib.auth.secret import key_ring
from chalicelib.auth.tokens import decode, mint
from chalicelib.auth.transport import read_token

__all__ = ["Principal", "authenticate", "decode", "mint", "read_token"]


def authenticate(headers, query_tokens) -> Principal:
    """The caller of a request (REST or websocket $connect), or Unauthorized."""
    return decode(read_token(headers, query_tokens), key_ring(), config.load())
