"""The Chalice application object, safe for threaded local servers. Every
answer carries its request id (X-Request-Id) and the CORS headers, whatever
made it; every path answers a preflight; every log line of a request carries
its id, route and customer (chalicelib/logcontext.py), and the request's
metrics are written once it is answered (chalicelib/metrics.py)."""

import logging
import threading
import uuid

from chalice import Chalice, Response

from chalicelib import logcontext, metrics
from chalicelib.api import cors

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "X-Request-Id"


class ChatChalice(Chalice):
    """Chalice keeps the current request in an attribute of the app. On Lambda
    one process serves one request at a time; the local server and the test
    client run requests on several threads, so keep it per thread."""

    _per_thread = threading.local()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        logcontext.install()

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

    def __call__(self, event, context):
        """API Gateway's request id (the one in its access logs and X-Ray), or
        Lambda's, or (the local server) a new one: in the answer's X-Request-Id
        header and in every log line. The CORS headers on every REST answer: a
        view's, Chalice's own 405/415, or an error no handler caught (without
        them a browser shows the page no answer at all)."""
        request_context = event.get("requestContext") or {}
        request_id = (request_context.get("requestId") or getattr(context, "aws_request_id", None)
                      or uuid.uuid4().hex)
        method = request_context.get("httpMethod") or event.get("httpMethod") or ""
        route = f"{method or '-'} {request_context.get('resourcePath', '-')}"
        try:
            with logcontext.request(request_id, route):
                answer = super().__call__(event, context)
        except Exception:
            log.exception("request failed before an answer was made")
            answer = Response(body={"Code": "InternalServerError", "Message": "An internal server error occurred."},
                              status_code=500).to_dict()
        finally:
            metrics.flush()
        headers = answer.setdefault("headers", {})
        headers[REQUEST_ID_HEADER] = request_id
        cors.add_to(headers, event.get("headers") or {}, preflight=method == "OPTIONS")
        return answer

    def answer_preflights(self) -> None:
        """An OPTIONS route on every path that has none: API Gateway hands the
        preflight to the function like any method (no mock integration with a
        fixed origin), and __call__ adds the headers. Call once every route is
        registered."""
        for path, methods in list(self.routes.items()):
            if "OPTIONS" not in methods:
                self.route(path, methods=["OPTIONS"], content_types=["*/*"], name=f"preflight {path}")(_preflight)


def _preflight(**_path):
    return Response(body="", status_code=204, headers={"Content-Type": "text/plain"})
