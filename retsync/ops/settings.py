"""The `[privacy]` table: how long customers' personal data is kept once their returns and orders are closed."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from retsync.kit.settings import parse_duration

_YEARS_MONTHS = re.compile(r"^\s*(\d+)\s*(y|mo)\s*$")


def _retention(value: object) -> object:
    """A duration as everywhere else, or whole years (`"2y"`, 365 days each) and months (`"18mo"`, 30 days each):
    retention periods are written in years in every privacy policy."""
    if isinstance(value, str) and (match := _YEARS_MONTHS.match(value)):
        return timedelta(days=int(match.group(1)) * (365 if match.group(2) == "y" else 30))
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(f'{value!r} is not a retention period; write "2y" (years), "18mo" (months) '
                         f'or "400d"') from None


Retention = Annotated[timedelta, BeforeValidator(_retention)]


class PrivacySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retain_personal_data: Retention | None = Field(
        default=None, gt=timedelta(0), description="names, e-mails, phones, addresses and free-text reasons of "
        "returns and orders closed longer ago than this are erased (unset: kept)")
