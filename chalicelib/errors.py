"""Errors the services raise; the HTTP layer turns them into Chalice's
`{"Code": ..., "Message": ...}` responses."""


class ServiceError(Exception):
    status = 500
    code = "InternalServerError"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(ServiceError):
    status = 400
    code = "BadRequestError"


class Unauthorized(ServiceError):
    status = 401
    code = "UnauthorizedError"


class Forbidden(ServiceError):
    status = 403
    code = "ForbiddenError"


class NotFound(ServiceError):
    status = 404
    code = "NotFoundError"


class Conflict(ServiceError):
    status = 409
    code = "ConflictError"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "PayloadTooLargeError"


class Unavailable(ServiceError):
    """Storage stayed busy (throttled, in conflict) through every retry: the
    request changed nothing and may be sent again."""

    status = 503
    code = "ServiceUnavailableError"


class TooManyRequests(ServiceError):
    """Over a send limit: nothing was written; the same request may be sent
    again after `retry_after` seconds (the Retry-After header)."""

    status = 429
    code = "TooManyRequestsError"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
