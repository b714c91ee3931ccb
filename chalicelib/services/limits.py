"""Send limits per caller: each agent may send `agent_sends_per_window`
messages, and each customer (all its agents and its own token together)
`customer_sends_per_window`, in every window of `send_window_seconds`
(by default 20 and 200 per 2 s: 10 and 100 a second, in bursts of up to 20
and 200). Windows are fixed (aligned on the epoch), so a caller sending at
the very end of one window and the start of the next may send up to twice
its cap within a moment; over any longer stretch the rate holds.

A send costs one conditional UpdateItem here (storage.models.SendWindowItem),
before anything else: over a limit, the send is refused with 429 and
Retry-After, having read and written nothing else (its Idempotency-Key is not
used). Reads cost nothing."""

import math
import time

from chalicelib import config
from chalicelib.auth import Principal
from chalicelib.errors import TooManyRequests
from chalicelib.storage.models import SendWindowItem
from chalicelib.storage.operations import attempt

# A window's item outlives its window a little (DynamoDB's TTL sweep is lazy anyway).
WINDOW_KEPT_SECONDS = 60


def allow_send(principal: Principal, now: float | None = None) -> None:
    """Count one send of `principal`, or refuse it (TooManyRequests) when it is over a limit."""
    settings = config.load()
    now = time.time() if now is None else now
    seconds = settings.send_window_seconds
    window = int(now // seconds)
    window_end = (window + 1) * seconds
    counts = attempt(lambda: SendWindowItem.count(
        principal.customer_id, principal.agent_id, window, settings.customer_sends_per_window,
        settings.agent_sends_per_window, int(window_end) + WINDOW_KEPT_SECONDS), "checking the send limits")
    if counts is None:
        return
    retry_after = max(1, math.ceil(window_end - now))
    if principal.agent_id is not None and counts["agent"] >= settings.agent_sends_per_window:
        limit = (f"agent {principal.agent_id} may send {settings.agent_sends_per_window} messages "
                 f"every {seconds} s")
    else:
        limit = (f"customer {principal.customer_id} (all its agents together) may send "
                 f"{settings.customer_sends_per_window} messages every {seconds} s")
    raise TooManyRequests(f"send limit: {limit}; nothing was sent, retry after {retry_after} s", retry_after)
