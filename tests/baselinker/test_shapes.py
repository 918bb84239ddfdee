"""The sandbox against BaseLinker's contract: the shapes (tests/baselinker/shapes.py) are checked against
shared/specs/baselinker/NOTES.md field by field, and the sandbox's answers against the shapes; then the rules
NOTES.md states: HTTP 200 with status ERROR for every refusal, the 100-a-minute limit that blocks (never a 429),
the journal's three days."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator

from retsync.testing.clock import VirtualClock
from retsync.testing.specs import spec_file, strict
from retsync_connectors.baselinker.emulator import SANDBOX_TOKEN, BaseLinkerEmulator
from tests.baselinker.shapes import ANSWERS, ERROR, LOG, PRODUCT, REASON, RETURN, STATUS


def call(emulator: BaseLinkerEmulator, method: str, token: str = SANDBOX_TOKEN, **parameters: Any) -> httpx.Response:
    with httpx.Client(transport=emulator.transport(), base_url="https://api.baselinker.com") as client:
        return client.post("/connector.php", headers={"X-BLToken": token},
                           data={"method": method, "parameters": json.dumps(parameters)})


@pytest.mark.parametrize("shape", [RETURN, PRODUCT, STATUS, REASON, LOG], ids=["return", "product", "status",
                                                                              "reason", "journal-entry"])
def test_every_field_of_the_shapes_is_one_the_contract_names(shape: dict[str, Any]) -> None:
    notes = spec_file("baselinker", "NOTES.md").read_text()
    missing = [name for name in shape["properties"] if not re.search(rf"(?<![a-z_]){name}(?![a-z_])", notes)]
    assert not missing, f"not in NOTES.md: {missing}"


@pytest.mark.parametrize("method, parameters", [
    ("getOrderReturns", {}), ("getOrderReturns", {"id_from": 40010}), ("getOrderReturnStatusList", {}),
    ("getOrderReturnReasonsList", {}), ("getOrderReturnJournalList", {"last_log_id": 0}),
    ("getOrders", {"order_id": 7_000_000}),
])
def test_the_sandbox_answers_in_the_documented_shapes(method: str, parameters: dict[str, Any]) -> None:
    emulator = BaseLinkerEmulator(seed=5)
    emulator.returns[40_001]["status_id"] = 1004
    call(emulator, "setOrderReturnStatus", return_id=40_001, status_id=1006)  # a journal entry of today
    response = call(emulator, method, **parameters)
    assert response.status_code == 200
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in Draft7Validator(strict(ANSWERS[method])).iter_errors(response.json())]
    assert not errors, errors[:5]
    listed = next(value for key, value in response.json().items() if key != "status")
    assert listed, "the sandbox answers something to check"


@pytest.mark.parametrize("method, parameters, code", [
    ("getOrderReturns", {}, "ERROR_BAD_TOKEN"),
    ("noSuchMethod", {}, "ERROR_UNKNOWN_METHOD"),
    ("setOrderReturnStatus", {"return_id": 1, "status_id": 1004}, "ERROR_RETURN_NOT_FOUND"),
    ("setOrderReturnStatus", {"return_id": 40_001, "status_id": 99}, "ERROR_STATUS_NOT_FOUND"),
    ("setOrderReturnRefund", {"return_id": 40_001, "order_refund_done": "a lot"}, "ERROR_BAD_PARAMETERS"),
])
def test_a_refusal_is_http_200_with_status_error(method: str, parameters: dict[str, Any], code: str) -> None:
    emulator = BaseLinkerEmulator(seed=5)
    response = call(emulator, method, token="wrong" if code == "ERROR_BAD_TOKEN" else SANDBOX_TOKEN, **parameters)
    assert response.status_code == 200
    assert not list(Draft7Validator(ERROR).iter_errors(response.json()))
    assert response.json()["error_code"] == code


def test_the_101st_request_of_a_minute_blocks_the_account_without_a_429() -> None:
    clock = VirtualClock()
    emulator = BaseLinkerEmulator(seed=5, clock=clock)
    for _ in range(100):
        assert call(emulator, "getOrderReturnStatusList").json()["status"] == "SUCCESS"
        clock.now += 0.5
    blocked = call(emulator, "getOrderReturnStatusList")
    assert blocked.status_code == 200 and blocked.json()["error_code"] == "ERROR_USER_ACCOUNT_BLOCKED"
    clock.now += 120  # a minute later the account is still blocked: the block outlasts the window
    assert call(emulator, "getOrderReturnStatusList").json()["status"] == "ERROR"
    clock.now += emulator.block_seconds
    assert call(emulator, "getOrderReturnStatusList").json()["status"] == "SUCCESS"
    assert emulator.blocks == 1


def test_a_steady_100_a_minute_is_not_blocked() -> None:
    clock = VirtualClock()
    emulator = BaseLinkerEmulator(seed=5, clock=clock)
    for _ in range(300):
        assert call(emulator, "getOrderReturnStatusList").json()["status"] == "SUCCESS"
        clock.now += 0.601
    assert emulator.blocks == 0 and emulator.most_in_a_minute == 100


def test_the_journal_answers_the_last_three_days_only() -> None:
    emulator = BaseLinkerEmulator(seed=5)
    now = emulator.wall()
    logs = call(emulator, "getOrderReturnJournalList", last_log_id=0).json()["logs"]
    assert logs and all(entry["date"] >= now - 3 * 86400 for entry in logs)
    assert any(entry["date"] < now - 3 * 86400 for entry in emulator.logs), "older entries exist, and are not answered"


def test_paging_by_id_from_answers_100_returns_oldest_id_first() -> None:
    emulator = BaseLinkerEmulator(seed=5, n_returns=230)
    first = call(emulator, "getOrderReturns", id_from=0).json()["returns"]
    second = call(emulator, "getOrderReturns", id_from=first[-1]["return_id"] + 1).json()["returns"]
    third = call(emulator, "getOrderReturns", id_from=second[-1]["return_id"] + 1).json()["returns"]
    ids = [r["return_id"] for r in first + second + third]
    assert (len(first), len(second), len(third)) == (100, 100, 30)
    assert ids == sorted(ids) == sorted(emulator.returns)
