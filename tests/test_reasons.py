"""Free-text return reasons, as shop customers type them, read into the unified reason."""

from __future__ import annotations

import pytest

from retsync.kit.model import ReturnReason
from retsync.kit.reasons import reason_from_words


@pytest.mark.parametrize("words, reason", [
    ("Too small, need a bigger size", ReturnReason.WRONG_SIZE),
    ("Buty za małe", ReturnReason.WRONG_SIZE),
    ("Het apparaat is kapot", ReturnReason.DEFECTIVE),
    ("Paczka przyszła uszkodzona", ReturnReason.DAMAGED),
    ("damaged in delivery", ReturnReason.DAMAGED),
    ("Found it cheaper elsewhere", ReturnReason.BETTER_PRICE),
    ("Rozmyśliłam się", ReturnReason.NO_LONGER_NEEDED),
    ("Die Farbe gefällt mir nicht", ReturnReason.OTHER),
    ("", ReturnReason.UNKNOWN),
    (None, ReturnReason.UNKNOWN),
])
def test_a_few_words_give_the_coarse_reason(words: str | None, reason: ReturnReason) -> None:
    assert reason_from_words(words) is reason


def test_words_naming_no_reason_fall_back_to_what_the_connector_says() -> None:
    assert reason_from_words("see attached photo", fallback=ReturnReason.NOT_AS_EXPECTED) \
        is ReturnReason.NOT_AS_EXPECTED
