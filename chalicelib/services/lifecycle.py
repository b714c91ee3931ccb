"""Data lifecycle: a customer's retention settings, and the expiry they put on
what is written (DynamoDB TTL, the table's `expires_at`).

- `retention_days` (0 keeps forever): a chatmessage, its copies and its
  history versions are written with `expires_at` = tm_create + retention.
  Reads treat an expired item as gone (DynamoDB deletes within about 48 h
  of `expires_at`), and the stream handler deletes the copies of a
  chatmessage that TTL removed.
- `purge_deleted_after_days`: a deleted chatmessage, its copies and its
  history get `expires_at` = the delete's time + grace (or their retention
  expiry, whichever comes first).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pynamodb.exceptions import DoesNotExist

from chalicelib.auth import Principal
from chalicelib.clock import TIME_FORMAT, now
from chalicelib.services import access
from chalicelib.storage.models import META, CustomerSettingsItem
from chalicelib.storage.operations import attempt, update

if TYPE_CHECKING:
    from chalicelib.schemas.bodies import CustomerSettingsUpdate

DEFAULT_PURGE_DAYS = 30
DAY = 86400


@dataclass(frozen=True)
class Settings:
    customer_id: str
    retention_days: int = 0
    purge_deleted_after_days: int = DEFAULT_PURGE_DAYS
    tm_update: str = ""

    def expires_at(self, tm_create: str) -> int | None:
        """When an item created at `tm_create` expires (epoch seconds), or None (kept)."""
        if not self.retention_days:
            return None
        return epoch(tm_create) + self.retention_days * DAY

    def purged_at(self, tm_delete: str, tm_create: str) -> int:
        """When a deleted message's content goes: after the grace, or at its retention expiry if sooner."""
        purge = epoch(tm_delete) + self.purge_deleted_after_days * DAY
        retained = self.expires_at(tm_create)
        return purge if retained is None else min(purge, retained)


def epoch(tm: str) -> int:
    return int(datetime.strptime(tm, TIME_FORMAT).replace(tzinfo=UTC).timestamp())


def timestamp(seconds: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)).strftime(TIME_FORMAT)


def now_epoch() -> int:
    return epoch(now())  # chalicelib.clock.now: the one clock tests move


def expired(item) -> bool:
    """An item past its expiry: gone for every reader, whether or not DynamoDB deleted it yet."""
    expires_at = getattr(item, "expires_at", None)
    return expires_at is not None and int(expires_at) <= now_epoch()


def settings_of(customer_id: str) -> Settings:
    """One GetItem (eventually consistent: a change applies to writes a moment after it)."""
    try:
        item = attempt(lambda: CustomerSettingsItem.get(CustomerSettingsItem.key(customer_id), META),
                       "reading the customer's settings")
    except DoesNotExist:
        return Settings(customer_id)
    return Settings(customer_id, int(item.retention_days or 0),
                    int(item.purge_deleted_after_days or DEFAULT_PURGE_DAYS), item.tm_update or "")


# ---- GET|PUT /customer/settings ----------------------------------------------------------------

def get_settings(principal: Principal) -> Settings:
    access.require_privileged(principal, "the customer's settings are for customer tokens, admins and managers")
    return settings_of(principal.customer_id)


def put_settings(principal: Principal, body: CustomerSettingsUpdate) -> Settings:
    """One UpdateItem; the fields not given keep their values."""
    access.require_privileged(principal, "the customer's settings are for customer tokens, admins and managers")
    tm = now()
    item = CustomerSettingsItem(CustomerSettingsItem.key(principal.customer_id), META)
    actions = [CustomerSettingsItem.kind.set(CustomerSettingsItem),  # an update writes no discriminator itself
               CustomerSettingsItem.customer_id.set(principal.customer_id), CustomerSettingsItem.tm_update.set(tm)]
    if body.retention_days is not None:
        actions.append(CustomerSettingsItem.retention_days.set(body.retention_days))
    if body.purge_deleted_after_days is not None:
        actions.append(CustomerSettingsItem.purge_deleted_after_days.set(body.purge_deleted_after_days))
    update(item, actions, None, "saving the customer's settings")
    return Settings(principal.customer_id, int(item.retention_days or 0),
                    int(item.purge_deleted_after_days or DEFAULT_PURGE_DAYS), tm)
