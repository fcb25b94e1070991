"""The audit event kinds: every `instance_events.type` the engine, store and services write.

One registry so the writers, the API's description, `docs/architecture.md` and the tests name
the same kinds (`tests/test_audit_events.py` checks the docs table and every write against
it). It lives at the package root, beside `instance_state.py`, because the store writes
events as well as the engine and the services. Members are `StrEnum`s: they bind, compare
and serialise as the stored strings, so stored rows and API answers are unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class AuditEvent(StrEnum):
    """What happened to an instance, in the past tense (`instance_events.type`)."""

    INSTANCE_STARTED = "instance_started"
    STEP_STARTED = "step_started"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    STEP_RETRY_SCHEDULED = "step_retry_scheduled"
    WAIT_STARTED = "wait_started"
    EVENT_WAIT_STARTED = "event_wait_started"
    REPLY_RECEIVED = "reply_received"
    DTMF_RECEIVED = "dtmf_received"
    BRANCHES_STARTED = "branches_started"
    WARNING = "warning"
    WAITS_SKIPPED = "waits_skipped"
    INSTANCE_COMPLETED = "instance_completed"
    INSTANCE_TERMINATED = "instance_terminated"
    INSTANCE_SUSPENDED = "instance_suspended"
    INSTANCE_RESUMED = "instance_resumed"
    INSTANCE_RETRIED = "instance_retried"


# One line per kind: the docs table and the API description are checked against / built from
# these, so a new kind cannot be written without being explained.
MEANINGS: dict[AuditEvent, str] = {
    AuditEvent.INSTANCE_STARTED: "The instance was created at its entry step.",
    AuditEvent.STEP_STARTED: "A step began to run (detail: the worker).",
    AuditEvent.STEP_COMPLETED: "A step ended (detail: its status and the next steps).",
    AuditEvent.STEP_FAILED: "A step faulted (detail: the message); the instance terminates.",
    AuditEvent.STEP_RETRY_SCHEDULED: "A step's attempt (a send, an HTTP request) failed or "
    "was deferred and will be retried (detail: attempt, message, delay, next attempt).",
    AuditEvent.WAIT_STARTED: "A Wait step sleeps until a time (detail: until).",
    AuditEvent.EVENT_WAIT_STARTED: "A step waits for an inbound event (detail: key, timeout).",
    AuditEvent.REPLY_RECEIVED: "A waiting step received its reply message.",
    AuditEvent.DTMF_RECEIVED: "A waiting step received its DTMF callback.",
    AuditEvent.BRANCHES_STARTED: "An If step started its `do` branches (detail: the steps).",
    AuditEvent.WARNING: "An output or condition expression warned (detail: the message).",
    AuditEvent.WAITS_SKIPPED: "An operator made every timer due now (detail: how many steps).",
    AuditEvent.INSTANCE_COMPLETED: "The instance ran to its end.",
    AuditEvent.INSTANCE_TERMINATED: "The instance ended by a step's fault (step and reason "
    "given) or a user's terminate.",
    AuditEvent.INSTANCE_SUSPENDED: "A user suspended the instance.",
    AuditEvent.INSTANCE_RESUMED: "A user resumed the suspended instance.",
    AuditEvent.INSTANCE_RETRIED: "An operator re-opened a failed instance at its failed step.",
}
