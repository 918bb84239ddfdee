"""The one table from a failure to what happens next, so every channel means the same by a failure: a decision act
carried out at a channel, or a marketplace return held in a shop's back office.

A connector raises; the outbox looks the exception up here (nearest class first, a connector's own
`Connector.outcomes` entries before these) and records the outcome. Documented for merchants in README
"What a failed push means"; the order of the rows does not matter, the class hierarchy does.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from retsync.kit.contract import AlreadyDone, Connector, DecisionAct, HoldRequest, Outcome, PushResult, PushStatus
from retsync.kit.http import ApiError, AuthError, BadPayload, ChannelError, Stopped, TransientError

log = structlog.get_logger(__name__)

OUTCOMES: Mapping[type[BaseException], Outcome] = {
    ApiError: Outcome(PushStatus.FAILED, "{title} refused {what}: {error}"),
    AuthError: Outcome(PushStatus.RETRY, "{title} did not accept the channel's credentials ({error}); {what} is "
                                         "retried, and goes out once they are fixed"),
    TransientError: Outcome(PushStatus.RETRY),
    BadPayload: Outcome(PushStatus.RETRY, "{title} answered {what} with something unreadable: {error}"),
    ChannelError: Outcome(PushStatus.RETRY),
    Stopped: Outcome(PushStatus.RETRY, "the daemon stopped before {title} answered; it is asked again"),
    NotImplementedError: Outcome(PushStatus.UNSUPPORTED, "{error}"),
    Exception: Outcome(PushStatus.RETRY, "the {title} connector failed: {error}"),
}
"""Why these: a refusal (4xx) will be refused again, so it fails at once and is shown; a credentials problem is
the merchant's to fix, not the decision's, so the decision waits (retried with backoff, failed after
`max_attempts` like any retry) instead of being lost; anything else may pass, so it is retried. A connector bug
(any other exception) is retried and logged with its traceback, never allowed to lose the decision."""


def carry_out(connector: Connector, act: DecisionAct) -> PushResult:
    """`connector.act(act)` as the outbox runs it: a kind the connector does not declare is never handed over,
    and whatever it raises becomes the outcome this table gives it."""
    if not connector.capabilities.supports(act.kind):
        return PushResult(PushStatus.UNSUPPORTED, connector.capabilities.why_unsupported(act.kind))
    try:
        return connector.act(act)
    except Exception as exc:  # what a failure means is this table's, the same for every channel
        return outcome_of(connector, exc, what=f"the {act.kind} decision")


def carry_out_hold(shop: Connector, request: HoldRequest) -> PushResult:
    """`shop.hold_return(request)` as the back-office job runs it: a failure becomes the outcome this table gives
    it, as for a decision act."""
    try:
        return shop.hold_return(request)
    except Exception as exc:  # the same table as for decisions: a connector bug is retried and visible
        return outcome_of(shop, exc, what="the request to hold the return")


def outcome_of(connector: Connector, exc: BaseException, *, what: str) -> PushResult:
    """The result an exception raised while asking `connector` for `what` ("the accept decision", "the request
    to hold the return") stands for; the templates may name `{title}`, `{what}` and `{error}`."""
    if isinstance(exc, AlreadyDone):
        return PushResult(PushStatus.PUSHED, f"already applied on {connector.title}: {exc}", reference=exc.reference,
                          result=exc.result)
    outcome = _lookup(connector.outcomes, exc) or _lookup(OUTCOMES, exc) or OUTCOMES[Exception]
    error = str(exc) or type(exc).__name__
    if outcome is OUTCOMES[Exception]:  # nobody expected it: a connector bug, kept visible with its traceback
        log.error("connector_crashed", channel=connector.channel, asked=what, exc_info=exc)
        error = f"{type(exc).__name__}: {error}"
    return PushResult(outcome.status, outcome.detail.format(title=connector.title, what=what, error=error))


def _lookup(table: Mapping[type[BaseException], Outcome], exc: BaseException) -> Outcome | None:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return None
