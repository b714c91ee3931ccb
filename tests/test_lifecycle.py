"""Data lifecycle (README.md, "Data lifecycle"): the customer's settings,
transcripts, retention and purge by DynamoDB TTL."""

import pytest

from tests.helpers import assert_error, ok

SETTINGS = "/v1.0/customer/settings"


# ---- GET|PUT /customer/settings -----------------------------------------------------------

def test_settings_start_as_the_defaults_and_change_field_by_field(customer):
    assert ok(customer.get(SETTINGS)) == {"customer_id": customer.customer_id, "retention_days": 0,
                                          "purge_deleted_after_days": 30, "tm_update": ""}
    changed = ok(customer.put(SETTINGS, {"retention_days": 90}))
    assert (changed["retention_days"], changed["purge_deleted_after_days"]) == (90, 30)
    assert changed["tm_update"]
    changed = ok(customer.put(SETTINGS, {"purge_deleted_after_days": 7}))
    assert (changed["retention_days"], changed["purge_deleted_after_days"]) == (90, 7)
    assert ok(customer.get(SETTINGS)) == changed


def test_settings_are_per_customer(customer, other_customer):
    ok(customer.put(SETTINGS, {"retention_days": 5}))
    assert ok(other_customer.get(SETTINGS))["retention_days"] == 0


@pytest.mark.parametrize("permission, status", [(32, 200), (64, 200), (16, 403)])
def test_settings_are_for_customer_tokens_admins_and_managers(make_agent, permission, status):
    agent = make_agent(permission=permission)
    for response in (agent.get(SETTINGS), agent.put(SETTINGS, {"retention_days": 1})):
        assert response.status_code == status, response.body


@pytest.mark.parametrize("body, words", [
    ({"retention_days": -1}, ["retention_days", "0 to 3650"]),
    ({"retention_days": 3651}, ["retention_days", "0 to 3650"]),
    ({"retention_days": "30"}, ["retention_days"]),
    ({"retention_days": 1.5}, ["retention_days"]),
    ({"purge_deleted_after_days": 0}, ["purge_deleted_after_days", "1 to 365"]),
    ({"purge_deleted_after_days": 366}, ["purge_deleted_after_days", "1 to 365"]),
    ({}, ["retention_days", "purge_deleted_after_days"]),
    ({"retention_days": 1, "other": 1}, ["other"]),
])
def test_settings_refuse_what_is_out_of_range(customer, body, words):
    response = customer.put(SETTINGS, body)
    assert_error(response, 400)
    for word in words:
        assert word in response.json_body["Message"], response.json_body
    assert ok(customer.get(SETTINGS))["tm_update"] == ""


@pytest.mark.parametrize("value", [0, 3650])
def test_settings_take_the_ends_of_the_range(customer, value):
    assert ok(customer.put(SETTINGS, {"retention_days": value, "purge_deleted_after_days": 365}))[
        "retention_days"] == value
