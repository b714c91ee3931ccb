"""Retried sends: the same Idempotency-Key from the same caller within 24 h
returns the first result and creates nothing, also when the retries race."""

import hashlib
import re
import time

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.auth import Principal
from chalicelib.errors import BadRequest, Conflict, ServiceError
from chalicelib.services.records import transaction
from chalicelib.storage.models import META, IdempotencyItem, TableItem

TTL_SECONDS = 24 * 3600
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def parse_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not _KEY.match(raw):
        raise BadRequest("Idempotency-Key: 1 to 255 printable ASCII characters without spaces")
    return raw


def request_hash(canonical_body: str) -> str:
    return hashlib.sha256(canonical_body.encode()).hexdigest()


def write_once(principal: Principal, scope: str, key: str | None, body_hash: str,
               items: list[TableItem], result_ids: tuple[str, str | None]) -> tuple[str, str | None] | None:
    """Write `items` atomically. With a key, also claim it; if it was claimed
    before, write nothing and return the ids of the first result instead."""
    if key is None:
        if len(items) == 1:
            items[0].save()
        else:
            with transaction() as tx:
                for item in items:
                    tx.save(item)
        return None
    claim = IdempotencyItem(
        IdempotencyItem.key(principal.customer_id, principal.caller_id, scope, key),
        request_hash=body_hash, message_id=result_ids[0], copy_id=result_ids[1],
        expires_at=int(time.time()) + TTL_SECONDS,
    )
    unclaimed = IdempotencyItem.pk.does_not_exist() | (IdempotencyItem.expires_at < int(time.time()))
    for _ in range(3):
        try:
            with transaction() as tx:
                tx.save(claim, condition=unclaimed)
                for item in items:
                    tx.save(item)
            return None
        except TransactWriteError:
            first = _claimed(claim.pk)
            if first is None:
                continue  # lost a race that nobody won: try again
            if first.request_hash != body_hash:
                raise Conflict("Idempotency-Key: already used with a different request body") from None
            return first.message_id, first.copy_id
    raise ServiceError("send not stored, please retry")


def _claimed(pk: str) -> IdempotencyItem | None:
    try:
        item = IdempotencyItem.get(pk, META, consistent_read=True)
    except DoesNotExist:
        return None
    return item if item.expires_at >= int(time.time()) else None

