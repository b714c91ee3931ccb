"""Every log line carries the request id, the customer id and the route: a
log record factory copies them from context variables set per request
(api/application.py: the request id and route; api/routing.py: the customer
once the caller is known). On Lambda, its JSON log format writes them as keys
of each line beside its own `requestId` (the Lambda invocation's); `request_id`
is API Gateway's, the one every answer carries in X-Request-Id. The stream and
websocket functions log with Lambda's requestId and route "stream" or
"websocket"."""

import contextlib
import contextvars
import logging

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
customer_id: contextvars.ContextVar[str] = contextvars.ContextVar("customer_id", default="-")
route: contextvars.ContextVar[str] = contextvars.ContextVar("route", default="-")

_installed = False


def install() -> None:
    """Add request_id, customer_id and route to every log record (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def with_context(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.request_id, record.customer_id, record.route = request_id.get(), customer_id.get(), route.get()
        return record

    logging.setLogRecordFactory(with_context)


@contextlib.contextmanager
def request(request_id_value: str, route_value: str):
    """Within: log records name this request and route (and no customer until set_customer)."""
    tokens = (request_id.set(request_id_value), route.set(route_value), customer_id.set("-"))
    try:
        yield
    finally:
        for variable, token in zip((request_id, route, customer_id), tokens, strict=True):
            variable.reset(token)


def set_customer(value: str) -> None:
    customer_id.set(value)
