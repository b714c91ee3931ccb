"""GET /v1.0/openapi.json: the OpenAPI 3 document, generated from the routes
Chalice registered, the Operation each view carries, and the pydantic models
that validate requests and shape responses."""

import functools
import re

from chalice import Blueprint

from chalicelib.api import cors
from chalicelib.api.inputs import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, body_model
from chalicelib.api.routing import NO_BODY

bp = Blueprint(__name__)
DOCUMENT_PATH = "/openapi.json"
REF = "#/components/schemas/{model}"
ERROR_TEXT = {
    400: "Bad input: the message names the field and the limit",
    401: "Missing, malformed, wrongly signed or expired token",
    403: "Not allowed for this caller",
    404: "Not found (or another customer's)",
    409: "Conflict with the current state",
    413: "Body over 256 KiB",
    429: "Over a send limit (per agent or per customer): nothing was written and the Idempotency-Key was not "
         "used; send again after the Retry-After header's seconds",
    503: "The database or the file storage stayed busy through every retry; nothing was changed, send the "
         "request again",
}
# Said once for every path: each answers OPTIONS (a CORS preflight) itself, not listed per path.
CORS_TEXT = (
    f"Browsers (CORS): every path answers a preflight (OPTIONS, 204) and every answer, errors included, "
    f"carries Access-Control-Allow-Origin for the stage's allowed origins (any, `*`, unless the stage names "
    f"them). Allowed request headers: {cors.ALLOWED_HEADERS}; methods: {cors.ALLOWED_METHODS}; exposed answer "
    f"headers: {cors.EXPOSED_HEADERS}; preflights are cached {cors.MAX_AGE_SECONDS} s. No credentials: send "
    f"the token in the Authorization header. A write authenticated by the token cookie from an origin the "
    f"stage does not name is refused (403)."
)
ALWAYS = (503,)  # any operation may meet a busy database
SECURITY = [{"tokenQuery": []}, {"bearer": []}, {"tokenCookie": []}]


def _uuid_parameter(name: str, where: str, required: bool) -> dict:
    return {"name": name, "in": where, "required": required, "schema": {"type": "string", "format": "uuid"}}


PAGING_PARAMETERS = [
    {"name": "page_size", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_SIZE_MAX, "default": PAGE_SIZE_DEFAULT}},
    {"name": "page_token", "in": "query", "required": False,
     "description": "next_page_token of the previous page, or a timestamp 'YYYY-MM-DD HH:MM:SS.ffffff'",
     "schema": {"type": "string", "maxLength": 80}},
]
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "The same key from the same caller within 24 h returns the first result",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}


def build_document(app) -> dict:
    # pydantic and the resource models load here, not with the app (cold starts)
    from pydantic.json_schema import models_json_schema

    from chalicelib.api.inputs import LIST_QUERY_MAX
    from chalicelib.schemas import resources
    from chalicelib.schemas.resources import Error, Page

    operations = []
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            operation = getattr(entry.view_function, "operation", None)  # None: a preflight (CORS_TEXT)
            if operation is not None:
                operations.append((path, method.lower(), operation))

    def returns(op):
        return getattr(resources, op.returns)

    def body(op):
        return body_model(op.body)

    models = {returns(op) for _, _, op in operations} | {Error}
    models |= {Page[returns(op)] for _, _, op in operations if op.page}
    bodies = {body(op) for _, _, op in operations if op.body}
    refs, schema = models_json_schema(
        [(m, "serialization") for m in models] + [(m, "validation") for m in bodies], ref_template=REF
    )

    def ref(model, mode="serialization"):
        return refs[(model, mode)]

    paths: dict = {}
    for path, method, op in operations:
        parameters = [_uuid_parameter(name, "path", True) if name not in op.path_strings else
                      {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 32}}
                      for name in re.findall(r"{(\w+)}", path)]
        if len(op.orders) > 1:
            parameters.append({"name": "order", "in": "query", "required": False,
                               "schema": {"type": "string", "enum": list(op.orders), "default": op.orders[0]}})
        parameters += [_uuid_parameter(name, "query", True) for name in op.required_query]
        parameters += [_uuid_parameter(name, "query", False) for name in op.query]
        parameters += [{"name": name, "in": "query", "required": True, "style": "form", "explode": True,
                        "description": f"repeat it for each value: ?{name}=...&{name}=...",
                        "schema": {"type": "array", "minItems": 1, "maxItems": LIST_QUERY_MAX,
                                   "items": {"type": "string", "format": "uuid"}}} for name in op.list_query]
        parameters += list(op.parameters)
        if op.page:
            parameters += PAGING_PARAMETERS if op.page_size_max == PAGE_SIZE_MAX else [
                {**PAGING_PARAMETERS[0], "schema": {**PAGING_PARAMETERS[0]["schema"], "maximum": op.page_size_max,
                                                    "default": op.page_size_max}}, PAGING_PARAMETERS[1]]
        if op.idempotent:
            parameters.append(IDEMPOTENCY_HEADER)
        responses = {str(op.status): {"description": "Accepted" if op.status == 202 else "OK", "content": {
            "application/json": {"schema": ref(Page[returns(op)] if op.page else returns(op))}}}}
        for status in (*op.errors, *ALWAYS):
            responses[str(status)] = {"description": ERROR_TEXT[status],
                                      "content": {"application/json": {"schema": ref(Error)}}}
            if status == 429:
                responses["429"]["headers"] = {"Retry-After": {
                    "description": "Seconds until the limit lets this caller send again",
                    "schema": {"type": "integer", "minimum": 1}}}
        document_op = {
            "operationId": f"{method}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
            "summary": op.summary, "parameters": parameters, "responses": responses, "security": SECURITY,
        }
        if op.description:
            document_op["description"] = op.description
        if op.body:
            body_schema = {"schema": ref(body(op), "validation")}
            document_op["requestBody"] = {"required": True, "content": {
                "application/json": body_schema, "text/plain": body_schema}}
        paths.setdefault(path, {})[method] = document_op

    paths.setdefault(f"/v1.0{DOCUMENT_PATH}", {})["get"] = {
        "operationId": "get_openapi_document", "summary": "This document", "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1 document",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "VoIPBIN chat API", "version": "1.0", "description": CORS_TEXT},
        "paths": paths,
        "components": {
            "schemas": schema.get("$defs", {}),
            "securitySchemes": {
                "tokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "tokenCookie": {"type": "apiKey", "in": "cookie", "name": "token"},
            },
        },
    }


@functools.lru_cache(maxsize=1)
def _cached_document() -> dict:
    return build_document(bp._current_app)


@bp.route(DOCUMENT_PATH, methods=["GET"], content_types=NO_BODY)
def openapi_document():
    """The document itself needs no token."""
    return _cached_document()
