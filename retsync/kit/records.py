"""Reading a page record by record: one record that cannot be read is set aside, never its whole channel.

A mapping raises for a record it cannot read; `RecordSieve` turns that into a `Quarantined` entry with a reason
that names the field but not its value (values may be personal data), and the engine stores it beside the
page in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError

from retsync.kit.http import BadPayload
from retsync.kit.payload import OutOfRange as OutOfRangeError
from retsync.kit.payload import text


@dataclass(frozen=True)
class Quarantined:
    """A record of a page that retsync could not read or store, set aside with why instead of failing its page.

    `kind` is "return" or "order"; `external_id` is None when even that could not be read; `payload` is the raw
    record as the channel sent it (the store caps its size and drops secret-looking keys).
    """

    kind: str
    external_id: str | None
    reason: str
    payload: Any = None


RECORD_ERRORS: tuple[type[BaseException], ...] = (
    BadPayload, LookupError, TypeError, ValueError, ArithmeticError, AttributeError, RecursionError)
"""What a mapping raises for one record it cannot read (a missing key, a value out of range, an unparseable
date). A failed request (`TransientError`, `ApiError`, `AuthError`) is not among them: it fails the page, which
is fetched again, because the channel is what is wrong then, not the record."""
REASON_LIMIT = 500

T = TypeVar("T")
log = structlog.get_logger(__name__)



def record_problem(exc: BaseException) -> str:
    """One line saying why a record could not be read, without the values in it (they may be personal data)."""
    if isinstance(exc, ValidationError):
        problems = [f"{'.'.join(str(part) for part in error['loc']) or 'record'}: {error['msg']}"
                    for error in exc.errors(include_url=False, include_input=False)[:3]]
        return "; ".join(problems)[:REASON_LIMIT]
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"[:REASON_LIMIT] if exc.args else "missing field"
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = "" if isinstance(exc, (BadPayload, OutOfRangeError)) else f"{type(exc).__name__}: "
    return f"{name}{message}"[:REASON_LIMIT] or type(exc).__name__


class RecordSieve:
    """Maps a page's records one at a time and sets aside each one whose mapping fails, so one record that
    cannot be read never stops its channel: every connector maps each raw record through `map` and hands
    `quarantined` to its `Page`."""

    def __init__(self) -> None:
        self.quarantined: list[Quarantined] = []

    def map(self, kind: str, raw: Any, mapper: Callable[..., T], *args: Any, external_id: Any = None,
            **kwargs: Any) -> T | None:
        """`mapper(*args, **kwargs)`, or None after setting `raw` aside when it raises one of RECORD_ERRORS.

        Keep requests out of `mapper`: a failed request is the channel's problem, not the record's, and must
        fail the page (which is fetched again) instead of quarantining a record that is fine."""
        try:
            return mapper(*args, **kwargs)
        except RECORD_ERRORS as exc:
            self.set_aside(kind, raw, record_problem(exc), external_id=external_id)
            return None

    def set_aside(self, kind: str, raw: Any, reason: str, *, external_id: Any = None) -> None:
        self.quarantined.append(Quarantined(kind, _external_id(external_id), reason, raw))

    def take(self) -> list[Quarantined]:
        """The records set aside since the last call: one page's worth."""
        taken, self.quarantined = self.quarantined, []
        return taken


def map_fetched(kind: str, raw: Any, mapper: Callable[..., T], *args: Any, external_id: str, **kwargs: Any
                ) -> T | None:
    """A record fetched alone (an order a return names, for linking): mapped, or None when it cannot be read.

    None is what a channel that does not know the record answers, so the core asks for it again later (once a
    day for orders) instead of failing the pull every time; the reason is logged once per attempt."""
    sieve = RecordSieve()
    mapped = sieve.map(kind, raw, mapper, *args, external_id=external_id, **kwargs)
    for aside in sieve.quarantined:
        log.warning("fetched_record_unreadable", kind=kind, external_id=external_id, reason=aside.reason)
    return mapped


def _external_id(value: Any) -> str | None:
    try:
        return text(value)
    except RECORD_ERRORS:
        return None
