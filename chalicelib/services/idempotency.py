"""Retried sends: the same Idempotency-Key from the same caller within 24 h
returns the first result and creates nothing, also when the retries race."""

import hashlib
import time

from pynamodb.exceptions import DoesNotExist

from chalicelib.auth import Principal
from chalicelib.errors import Conflict
from chalicelib.storage.models import META, IdempotencyItem, TableItem, registered
from chalicelib.storage.operations import CONDITION_FAILED, ConditionFailed, attempt, transact

TTL_SECONDS = 24 * 3600
CLAIM_ATTEMPTS = 3


def request_hash(canonical_body: str) -> str:
    return hashlib.sha256(canonical_body.encode()).hexdigest()


def write_once(principal: Principal, scope: str, key: str | None, body_hash: str,
               items: list[TableItem], result_ids: tuple[str, str | None], extra=None,
               ) -> tuple[str, str | None] | None:
    """Write `items` atomically (and whatever `extra(tx)` adds). With a key,
    also claim it; if it was claimed before, write nothing and return the ids
    of the first result instead. A condition of `extra` that fails raises
    ConditionFailed, its reasons in the order the actions were added."""

    def write(tx, claim=None) -> None:
        if claim is not None:
            tx.save(claim, condition=unclaimed)
        for item in items:
            tx.save(item)
        if extra is not None:
            extra(tx)

    if key is None:
        if len(items) == 1 and extra is None:
            attempt(items[0].save, f"storing the {scope[:-1]}")
        else:
            transact(write, f"storing the {scope[:-1]}")
        return None
    claim_key = IdempotencyItem.key(principal.customer_id, principal.caller_id, scope, key)
    claim = IdempotencyItem(
        claim_key, request_hash=body_hash, message_id=result_ids[0], copy_id=result_ids[1],
        expires_at=int(time.time()) + TTL_SECONDS, **registered(principal.customer_id, claim_key),
    )
    unclaimed = IdempotencyItem.pk.does_not_exist() | (IdempotencyItem.expires_at < int(time.time()))
    for _ in range(CLAIM_ATTEMPTS):
        try:
            transact(lambda tx: write(tx, claim), f"storing the {scope[:-1]}")
            return None
        except ConditionFailed as failed:
            if failed.reasons and failed.reasons[0] != CONDITION_FAILED:
                raise  # another of the write's conditions than the claim: the caller's to explain
            first = _claimed(claim.pk)
            if first is None:
                continue  # lost a race that nobody won: try again
            if first.request_hash != body_hash:
                raise Conflict("Idempotency-Key: already used with a different request body") from None
            return first.message_id, first.copy_id
    raise Conflict("Idempotency-Key: a request with this key is being stored right now; retry")


def _claimed(pk: str) -> IdempotencyItem | None:
    try:
        item = attempt(lambda: IdempotencyItem.get(pk, META, consistent_read=True), "reading the Idempotency-Key")
    except DoesNotExist:
        return None
    return item if item.expires_at >= int(time.time()) else None
