"""A background job's slices (exports, erasures), run by the stream function
from the job's own records: what happens when one keeps failing.

A slice that raises is counted on the job (`failures`, and `error` for GET
to show) and raised again, so Lambda hands its record again. At
SLICE_ATTEMPTS the job is `failed` instead and the record let go: without
this a job whose record Lambda gave up on would show `running` for ever.
SLICE_ATTEMPTS is at most 1 + the event source mapping's MaximumRetryAttempts
(tests/test_jobs.py checks every stage), so the job is failed before Lambda
gives up on the record. A slice that succeeds clears both."""

from __future__ import annotations

import logging
from collections.abc import Callable

from botocore.exceptions import ClientError

from chalicelib import metrics
from chalicelib.clock import now
from chalicelib.storage.models import META
from chalicelib.storage.operations import ConditionFailed, update

log = logging.getLogger(__name__)

SLICE_ATTEMPTS = 5


def run_slice(job, same_slice, run: Callable[[object], None], what: str, then: str) -> None:
    """`run(job)`, counting a failure on the job. `same_slice`: the condition
    that the job is still running, at the slice `job` shows (not saved
    meanwhile); `then`: what the caller can do once the job has failed."""
    try:
        run(job)
    except Exception as error:
        model = type(job)
        reason = describe(error)
        try:
            counted = update(model(job.pk, META), [model.failures.add(1), model.error.set(
                f"a step failed ({reason}); trying again")], same_slice, f"counting a failure of {what}")
        except ConditionFailed:
            log.info("%s: a slice saved meanwhile failed again (%s): nothing to count", what, reason)
            return
        failures = int(counted.failures)
        metrics.count("JobStepsFailed")
        if failures < SLICE_ATTEMPTS:
            raise
        log.error("%s: a slice failed %d times, the job is failed", what, failures, exc_info=error)
        fail(job, same_slice, f"a step failed {failures} times ({reason}); {then}", what)


def fail(job, same_slice, error: str, what: str, *more_actions) -> None:
    """The job `failed`, saying why, if it is still at that slice (else its
    retry saved it meanwhile, and is not the one to fail it)."""
    model = type(job)
    try:
        update(model(job.pk, META), [model.status.set("failed"), model.tm_update.set(now()), model.error.set(error),
                                     *more_actions], same_slice, f"failing {what}")
        metrics.count("JobsFailed")
    except ConditionFailed:
        log.info("%s: saved meanwhile, not failed", what)


def cleared(model) -> list:
    """Actions for a slice's save: the failures before it are over."""
    return [model.failures.remove(), model.error.remove()]


def describe(error: BaseException) -> str:
    """What a job's error says of a failure: the AWS operation and its code,
    not the message (which may name the account's resources); logs have it all.
    The storage layers raise their own errors from botocore's (PynamoDB's
    keep it as `cause`): the first ClientError behind `error` is named."""
    seen: BaseException | None = error
    for _ in range(8):  # a chain is a few links long; never loop on a cycle
        if seen is None:
            break
        if isinstance(seen, ClientError):
            return f"{seen.operation_name} refused: {seen.response.get('Error', {}).get('Code', 'unknown')}"
        cause = getattr(seen, "cause", None)
        seen = cause if isinstance(cause, BaseException) else (seen.__cause__ or seen.__context__)
    return type(error).__name__
