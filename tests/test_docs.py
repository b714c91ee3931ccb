"""docs/API.md, the users' reference, is what devtools/apidoc.py makes of the
app's OpenAPI document today: a route added or changed without regenerating it
fails here."""

import pytest

from devtools import apidoc


def test_docs_api_md_is_up_to_date():
    expected = apidoc.generate()
    current = apidoc.OUTPUT.read_text(encoding="utf-8")
    assert current == expected, "docs/API.md is out of date: run .venv/bin/python -m devtools.apidoc"


def test_every_route_says_who_may_call_it():
    document = apidoc.fetch_document()
    routes = {f"{method.upper()} {path}" for path, methods in document["paths"].items() for method in methods}
    assert routes == set(apidoc.ACCESS)


def test_a_route_nobody_documented_stops_the_generator():
    document = apidoc.fetch_document()
    document["paths"]["/v1.0/new_things"] = {"get": {"summary": "New", "responses": {}}}
    with pytest.raises(ValueError, match="new_things"):
        apidoc.render(document, "# intro\n")


def test_the_reference_covers_each_route_with_its_access_body_answer_and_errors():
    text = apidoc.OUTPUT.read_text(encoding="utf-8")
    for key, access in apidoc.ACCESS.items():
        section = text.split(f"### `{key}`", 1)[1].split("\n### ", 1)[0]
        assert f"**Who may call it:** {access}" in section, key
        assert "**Answer 200:**" in section or "**Answer 202:**" in section, key
        if not key.endswith("openapi.json"):
            assert "**Errors**" in section, key
        if key.startswith(("POST", "PUT")):
            assert "**Body** none" in section or ("**Body**" in section and "| field | type |" in section), key
    for convention in ("## Authentication", "## Who may do what", "## Lists and paging", "## Errors", "## Limits"):
        assert convention in text


def test_every_event_is_documented():
    from chalicelib.services.events import EVENT_TYPES

    assert set(apidoc.EVENTS) == set(EVENT_TYPES)
    text = apidoc.OUTPUT.read_text(encoding="utf-8")
    for name in EVENT_TYPES:
        assert f"| `{name}` |" in text.split("## Events", 1)[1], name
