"""The Chalice application object, safe for threaded local servers."""

import threading

from chalice import Chalice


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
