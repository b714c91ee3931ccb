"""Timeouts and retries of every AWS client, in one place: one retry layer per
call, jittered, inside a time budget, so a request always answers (our 503 at
worst) well before API Gateway's 29 s.

- DynamoDB (PynamoDB) and S3: botocore's own retries off (one attempt per
  call); `storage.operations.attempt` and `storage.objects.attempt` retry what
  is transient, waiting `next_delay()` between attempts, while `RETRY_BUDGET_SECONDS`
  allows. A call that hangs costs READ_TIMEOUT_SECONDS per attempt: at most
  two attempts fit in the budget, so a hung DynamoDB answers 503 in about 6 s.
- Every other client (SSM, Secrets Manager, EventBridge, API Gateway's
  management API): `client_config()`, botocore's standard retry mode (its
  jittered exponential backoff) with a small number of attempts, and the same
  timeouts. Nothing of ours retries on top of those.
"""

import random
import time

CONNECT_TIMEOUT_SECONDS = 1.0  # a TCP connect within a region takes milliseconds
READ_TIMEOUT_SECONDS = 3.0  # between bytes of an answer: DynamoDB answers in milliseconds
RETRY_BUDGET_SECONDS = 8.0  # one operation's attempts, waits included: 3 sequential ones still fit in 29 s
FIRST_DELAY_SECONDS = 0.05
MAX_DELAY_SECONDS = 1.0
OTHER_CLIENTS_MAX_ATTEMPTS = 3  # botocore standard mode, for the clients `attempt` does not wrap


def now() -> float:
    """The clock a retry budget is measured on."""
    return time.monotonic()


def next_delay(number: int, started: float, first_delay: float = FIRST_DELAY_SECONDS) -> float | None:
    """After failed attempt `number`: how long to wait before the next one, a
    jittered wait ("full jitter": anywhere up to first_delay * 2**(number-1),
    capped), or None if another attempt (the wait and a whole read timeout)
    would end past the budget that began at `started` (`now()`)."""
    delay = random.uniform(0, min(first_delay * 2 ** (number - 1), MAX_DELAY_SECONDS))
    if now() - started + delay + READ_TIMEOUT_SECONDS > RETRY_BUDGET_SECONDS:
        return None
    return delay


def client_config(**extra):
    """botocore Config for the clients not wrapped by our retry layer."""
    from botocore.config import Config  # with boto3, only where such a client is made

    return Config(connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS,
                  retries={"mode": "standard", "total_max_attempts": OTHER_CLIENTS_MAX_ATTEMPTS}, **extra)
