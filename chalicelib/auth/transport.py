"""Where a request carries its token: a `token` cookie, a `token` query
parameter or an `Authorization: Bearer` header. One reader serves the REST
API and the websocket `$connect`, so both accept and refuse the same things."""

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from chalicelib.errors import Forbidden, Unauthorized


def read_token(headers: Mapping[str, str], query_tokens: Iterable[str]) -> str:
    """The one token of a request. Two different tokens (say a Bearer header
    for one customer and a cookie for another) are refused, never resolved by
    a silent preference; the same token given twice is fine."""
    found: list[tuple[str, str]] = []
    lowered = {name.lower(): value for name, value in headers.items()}
    for part in (lowered.get("cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        value = value.strip().strip('"')
        if name == "token" and value:
            found.append(("cookie", value))
    found += [("query", value.strip()) for value in query_tokens if value and value.strip()]
    scheme, _, credentials = (lowered.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        found.append(("Bearer header", credentials.strip()))
    if not found:
        raise Unauthorized("token: missing (give it as ?token=, a Bearer header or a token cookie)")
    distinct = {token for _, token in found}
    if len(distinct) > 1:
        places = " and ".join(sorted({place for place, _ in found}))
        raise Unauthorized(f"token: {len(distinct)} different tokens in one request ({places}); send one")
    return found[0][1]


def refuse_cross_site_cookie_write(headers: Mapping[str, str], method: str, allowed_origins: Iterable[str]) -> None:
    """A browser sends the `token` cookie with a plain HTML form posted from
    any site (text/plain needs no preflight), so a write carrying the cookie is
    accepted only without an Origin (curl, servers), from the API's own origin,
    or from an origin the stage names: `*` lets pages read answers, never act
    with an agent's cookie. Tokens in a header or the query are never sent by
    a browser on its own, so they need no such check."""
    if method.upper() in ("GET", "HEAD", "OPTIONS"):
        return
    lowered = {name.lower(): value for name, value in headers.items()}
    has_cookie = any(part.strip().partition("=")[0] == "token" for part in (lowered.get("cookie") or "").split(";"))
    origin = (lowered.get("origin") or "").strip()
    if not has_cookie or not origin:
        return
    if origin != "*" and origin in set(allowed_origins):
        return
    if origin != "null" and urlsplit(origin).netloc.lower() == (lowered.get("host") or "").strip().lower():
        return
    raise Forbidden(f"token: a cookie-authenticated {method.upper()} from origin {origin[:100]!r} is refused; "
                    "pages of other origins send the token in the Authorization header")
