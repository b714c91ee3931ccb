"""Authentication: a token from the request to a Principal."""

from chalicelib.auth.principal import Principal
from chalicelib.auth.tokens import decode, mint

__all__ = ["Principal", "decode", "mint"]
