"""CORS: which pages of other origins may read the API's answers.

Every answer carries these headers, errors included (a browser hides an
answer without them from the page, so a 4xx would look like a network
failure), and every path answers a preflight (`OPTIONS`) itself: API Gateway
passes it to the function as any other method (Chalice registers the routes,
see ChatChalice.answer_preflights). The stage's allowed origins are
CHAT_CORS_ORIGINS (comma-separated `scheme://host[:port]`, or `*`; `*` when
unset). No answer allows credentials: a page sends its token in the
Authorization header, and a cookie never reaches the API from another site's
fetch (chalicelib.auth.transport refuses a cookie write from another site)."""

from chalicelib import config

ALLOWED_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key"
# Answer headers a page may read besides the always-visible ones (Content-Type...).
EXPOSED_HEADERS = "Retry-After, X-Request-Id, Allow"
MAX_AGE_SECONDS = 600  # how long a browser keeps a preflight's answer (Chromium caps it at 7,200)


def allowed_origins() -> tuple[str, ...]:
    return config.load().cors_origins


def response_headers(request_headers, preflight: bool = False) -> dict[str, str]:
    """The CORS headers of an answer to a request with `request_headers`
    (a case-insensitive mapping, or a plain dict)."""
    origin = _header(request_headers, "origin")
    origins = allowed_origins()
    headers = {"Access-Control-Expose-Headers": EXPOSED_HEADERS}
    if "*" in origins:
        headers["Access-Control-Allow-Origin"] = "*"
    else:
        headers["Vary"] = "Origin"  # the answer depends on the Origin: caches must not mix them
        if origin in origins:
            headers["Access-Control-Allow-Origin"] = origin
    if preflight:
        headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
    return headers


def add_to(answer_headers: dict, request_headers, preflight: bool = False) -> None:
    """Add the CORS headers to an answer's headers, keeping any it set itself."""
    present = {name.lower() for name in answer_headers}
    for name, value in response_headers(request_headers, preflight).items():
        if name.lower() not in present:
            answer_headers[name] = value


def _header(headers, name: str) -> str | None:
    if headers is None:
        return None
    value = headers.get(name)
    if value is None and isinstance(headers, dict):
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value.strip() if isinstance(value, str) else value
