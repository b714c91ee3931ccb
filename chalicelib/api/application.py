"""The Chalice application object, safe for threaded local servers, with
CORS headers on every answer and a preflight answer on every path."""

import logging
import threading

from chalice import Chalice, Response

from chalicelib.api import cors

log = logging.getLogger(__name__)


class ChatChalice(Chalice):
    """Chalice keeps the current request in an attribute of the app. On Lambda
    one process serves one request at a time; the local server and the test
    client run requests on several threads, so keep it per thread."""

    _per_thread = threading.local()

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
        """Every REST answer carries the CORS headers, whatever made it: a view,
        Chalice's own 405/415, or an error no handler caught (a browser shows
        the page no answer at all without them)."""
        try:
            answer = super().__call__(event, context)
        except Exception:
            log.exception("request failed before an answer was made")
            answer = Response(body={"Code": "InternalServerError", "Message": "An internal server error occurred."},
                              status_code=500).to_dict()
        request_headers = event.get("headers") or {}
        method = (event.get("requestContext") or {}).get("httpMethod") or event.get("httpMethod") or ""
        answer.setdefault("headers", {})
        cors.add_to(answer["headers"], request_headers, preflight=method == "OPTIONS")
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
