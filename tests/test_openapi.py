"""The OpenAPI document covers exactly the routes Chalice registers."""

import app as chat_app
from chalicelib.schemas import bodies as request_models


def test_document_is_served_without_a_token(client):
    r = client.http.get("/v1.0/openapi.json")
    assert r.status_code == 200
    assert r.json_body["openapi"].startswith("3.")


def test_every_registered_route_is_documented_and_nothing_else(client):
    """Preflights (OPTIONS, on every path) are said once, in the document's description."""
    document = client.http.get("/v1.0/openapi.json").json_body
    registered = {(path, method.lower()) for path, methods in chat_app.app.routes.items() for method in methods
                  if method != "OPTIONS"}
    documented = {(path, method) for path, methods in document["paths"].items() for method in methods}
    assert registered == documented
    assert {path for path, _ in registered} == {path for path, methods in chat_app.app.routes.items()
                                                if "OPTIONS" in methods}
    assert "preflight" in document["info"]["description"] and "Idempotency-Key" in document["info"]["description"]


def test_every_id_path_parameter_is_a_uuid_and_lists_take_paging(client):
    document = client.http.get("/v1.0/openapi.json").json_body
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            names = {p["name"]: p for p in operation.get("parameters", [])}
            for segment in path.split("/"):
                if segment == "{emoji}":  # the one path parameter that is not an id
                    assert names["emoji"]["schema"] == {"type": "string", "maxLength": 32}
                elif segment.startswith("{"):
                    assert names[segment[1:-1]]["schema"]["format"] == "uuid", (path, method)
            if "Page_" in str(operation["responses"].get("200")):
                assert {"page_size", "page_token"} <= set(names), (path, method)


def test_bodies_come_from_the_pydantic_models_that_validate_them(client):
    document = client.http.get("/v1.0/openapi.json").json_body
    schemas = document["components"]["schemas"]
    chat_create = schemas["ChatCreate"]
    assert chat_create == {**chat_create, **request_models.ChatCreate.model_json_schema(
        ref_template="#/components/schemas/{model}")}
    send = document["paths"]["/v1.0/chatmessages"]["post"]
    body_schema = send["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/ChatmessageCreate"}
    assert any(p["name"] == "Idempotency-Key" for p in send["parameters"])
    assert schemas["ChatmessageCreate"]["properties"]["text"]["maxLength"] == 10_000


def test_token_security_schemes(client):
    document = client.http.get("/v1.0/openapi.json").json_body
    schemes = document["components"]["securitySchemes"]
    assert schemes["tokenQuery"] == {"type": "apiKey", "in": "query", "name": "token"}
    assert schemes["bearer"]["scheme"] == "bearer"


def test_the_rendered_fields_are_the_resource_models_fields():
    """Answers render from plain tuples (no pydantic on the request path): they
    must be exactly the pydantic models' fields, which the document shows."""
    from chalicelib.schemas import resources
    from chalicelib.schemas.fields import FIELDS

    for name, fields in FIELDS.items():
        assert fields == tuple(getattr(resources, name).model_fields), name
