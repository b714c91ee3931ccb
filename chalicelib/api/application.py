"""The Chalice application object, safe for threaded local servers; every
answer carries its request id (X-Request-Id), every log line of the request
its id, route and customer (chalicelib/logcontext.py), and the request's
metrics are written once it is answered (chalicelib/metrics.py)."""

import threading
import uuid

from chalice import Chalice

from chalicelib import logcontext, metrics

REQUEST_ID_HEADER = "X-Request-Id"


class ChatChalice(Chalice):
    """Chalice keeps the current request in an attribute of the app. On Lambda
    one process serves one request at a time; the local server and the test
    client run requests on several threads, so keep it per thread."""

    _per_thread = threading.local()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        logcontext.install()

    def __call__(self, event, context):
        """API Gateway's request id (the one in its access logs and X-Ray), or
        Lambda's, or (the local server) a new one: in the answer's
        X-Request-Id header, error answers included, and in every log line."""
        request_context = event.get("requestContext") or {}
        request_id = (request_context.get("requestId") or getattr(context, "aws_request_id", None)
                      or uuid.uuid4().hex)
        route = f"{request_context.get('httpMethod', '-')} {request_context.get('resourcePath', '-')}"
        try:
            with logcontext.request(request_id, route):
                response = super().__call__(event, context)
        finally:
            metrics.flush()
        response.setdefault("headers", {})[REQUEST_ID_HEADER] = request_id
        return response

    @property
    def current_request(self):
        return getattr(self._per_thread, "request", None)

    @current_request.setter
    def current_request(self, value):
        self._per_thread.request = value

    @property
    def lambda_context(self):
        return getattr(self._per_thread, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value):
        self._per_thread.lambda_context = value
