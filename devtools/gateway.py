"""What API Gateway answers before any function runs, as the stack sets it
(infra/build_template.py's gateway responses), for Chalice's local gateway
(`make run` and the tests' client).

API Gateway answers a method and path no route matches with 403
`{"message": "Missing Authentication Token"}` and, when the request has an
Authorization header, a message that quotes the header (the caller's whole
token) back. The stack replaces that answer with the API's own 404 error."""

import json

UNKNOWN_ROUTE_STATUS = 404
UNKNOWN_ROUTE_BODY = {"Code": "NotFoundError", "Message": "no route matches this method and path"}

_patched = False


def answer_unknown_routes_as_the_stack_does() -> None:
    """Chalice's local gateway, from now on: an unknown route is the stack's
    404 (idempotent)."""
    global _patched
    if _patched:
        return
    _patched = True
    from chalice.local import ForbiddenError, LocalGateway, LocalGatewayException

    class UnknownRoute(LocalGatewayException):
        CODE = UNKNOWN_ROUTE_STATUS

    handle_request = LocalGateway.handle_request

    def handle(self, method, path, headers, body):
        try:
            return handle_request(self, method, path, headers, body)
        except ForbiddenError as refused:  # no route matched (the app has no authorizers)
            request_id = refused.headers.get("x-amzn-RequestId", "")
            raise UnknownRoute({"Content-Type": "application/json", "x-amzn-RequestId": request_id,
                                "x-amzn-ErrorType": "NotFoundException"},
                               json.dumps(UNKNOWN_ROUTE_BODY).encode()) from None

    LocalGateway.handle_request = handle
