"""BolClient on hand-made answers: the shapes bol may send, and what we make of Problem bodies."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from retsync.kit.contract import Runtime
from retsync.kit.http import ApiError, BadPayload
from retsync_connectors.bol.client import MEDIA_TYPE, BolClient, problem_detail
from retsync_connectors.bol.connector import BolSettings

Answer = Callable[[httpx.Request], httpx.Response]
ClientFor = Callable[[Answer], BolClient]

ENTRY = {
    "returnId": "1",
    "registrationDateTime": "2016-11-14T11:06:48.423+01:00",
    "fulfilmentMethod": "FBR",
    "returnItems": [{"rmaId": "31234567", "orderId": "4012345678"}],
}
PROBLEM = {
    "type": "https://api.bol.com/problems",
    "title": "Error validating request. Consult the bol.com API documentation for more information.",
    "status": 400,
    "detail": "Bad request",
    "host": "Instance-001",
    "instance": "https://api.bol.com/retailer/returns/1",
    "violations": [
        {"name": "handlingResult", "reason": "Request contains invalid value(s): 'X', allowed values: RETURN_RECEIVED."},
        {"name": "quantityReturned", "reason": "must be at least 1."},
    ],
}


@pytest.fixture
def seen() -> list[httpx.Request]:
    return []


@pytest.fixture
def client_for(tmp_path: Path, seen: list[httpx.Request]) -> Iterator[ClientFor]:
    """A BolClient whose API calls are answered by `answer` (the token endpoint always says yes)."""
    made: list[BolClient] = []

    def make(answer: Answer) -> BolClient:
        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/token":
                return httpx.Response(200, json={"access_token": "t0ken", "token_type": "Bearer", "expires_in": 299})
            seen.append(request)
            return answer(request)

        settings = BolSettings(connector="bol", client_id="id", client_secret="secret", max_retries=0)
        runtime = Runtime(state_dir=tmp_path, transport=httpx.MockTransport(handler), sleep=lambda seconds: None)
        client = BolClient("bol-test", settings, runtime)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def answer(payload: Any, status: int = 200) -> Answer:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return lambda request: httpx.Response(status, content=content, headers={"content-type": MEDIA_TYPE})


def test_list_returns_sends_bols_parameters_and_media_type(client_for: ClientFor, seen: list[httpx.Request]) -> None:
    assert client_for(answer({"returns": [ENTRY]})).list_returns(3, True, "FBB") == [ENTRY]

    request = seen[0]
    assert dict(request.url.params) == {"page": "3", "handled": "true", "fulfilment-method": "FBB"}
    assert request.url.host == "api.bol.com"
    assert request.headers["accept"] == MEDIA_TYPE
    assert request.headers["authorization"] == "Bearer t0ken"


@pytest.mark.parametrize("empty", [{}, {"returns": []}, {"returns": None}, b""])
def test_an_empty_list_in_any_spelling_is_an_empty_page(client_for: ClientFor, empty: Any) -> None:
    assert client_for(answer(empty)).list_returns(1, False, "FBR") == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"returns": {"returnId": "1"}}, "not an array"),
        ({"returns": [{"registrationDateTime": "2016-11-14T11:06:48Z", "returnItems": []}]}, "without returnId"),
        ({"returns": [{"returnId": "1", "registrationDateTime": "2016-11-14T11:06:48Z"}]}, "no returnItems"),
        ({"returns": [{"returnId": "1", "returnItems": [{"orderId": "4"}]}]}, "without rmaId"),
        ({"returns": ["1"]}, "expected a JSON object"),
        ({"unexpected": ["this", "is", "not", "the", "documented", "shape"]}, "no `returns` array"),
        ([ENTRY], "expected a JSON object"),
        (b'{"returns": [{"returnId": "1", "registrationDateTime": ', "not valid JSON"),
    ],
)
def test_a_list_of_the_wrong_shape_is_a_bad_payload(client_for: ClientFor, payload: Any, message: str) -> None:
    with pytest.raises(BadPayload, match=message):
        client_for(answer(payload)).list_returns(1, False, "FBR")


def test_a_404_on_a_return_order_or_process_is_none(client_for: ClientFor) -> None:
    client = client_for(answer(dict(PROBLEM, status=404, detail="Not found", violations=[]), status=404))
    assert client.get_return("1") is None
    assert client.get_order("1") is None
    assert client.get_process_status("1") is None


def test_other_refusals_raise_with_bols_detail_and_violations(client_for: ClientFor) -> None:
    with pytest.raises(ApiError) as refused:
        client_for(answer(PROBLEM, status=400)).get_return("1")
    assert refused.value.status_code == 400
    assert refused.value.message == (
        "Bad request (handlingResult: Request contains invalid value(s): 'X', allowed values: RETURN_RECEIVED.; "
        "quantityReturned: must be at least 1.)"
    )


def test_handle_return_puts_bols_body_with_bols_content_type(client_for: ClientFor, seen: list[httpx.Request]) -> None:
    status = {"processStatusId": "42", "entityId": "31234567", "eventType": "HANDLE_RETURN_ITEM", "status": "PENDING",
              "description": "x", "createTimestamp": "2018-11-14T09:34:41+01:00", "links": []}

    assert client_for(answer(status, status=202)).handle_return("31234567", "RETURN_RECEIVED", 2) == status

    request = seen[0]
    assert (request.method, request.url.path) == ("PUT", "/retailer/returns/31234567")
    assert request.headers["content-type"] == MEDIA_TYPE
    assert json.loads(request.content) == {"handlingResult": "RETURN_RECEIVED", "quantityReturned": 2}


@pytest.mark.parametrize("payload", [{"status": "PENDING"}, {"processStatusId": "1"}, ["PENDING"]])
def test_a_process_status_that_cannot_be_followed_is_a_bad_payload(client_for: ClientFor, payload: Any) -> None:
    with pytest.raises(BadPayload):
        client_for(answer(payload, status=202)).handle_return("1", "RETURN_RECEIVED", 1)


def test_order_and_return_details_are_checked(client_for: ClientFor) -> None:
    with pytest.raises(BadPayload, match="without orderId"):
        client_for(answer({"orderItems": []})).get_order("1")
    with pytest.raises(BadPayload, match="orderItems"):
        client_for(answer({"orderId": "1", "orderItems": {}})).get_order("1")
    with pytest.raises(BadPayload, match="without returnId"):
        client_for(answer({"returnItems": []})).get_return("1")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (PROBLEM, "Bad request (handlingResult: Request contains invalid value(s): 'X', allowed values: "
                  "RETURN_RECEIVED.; quantityReturned: must be at least 1.)"),
        (dict(PROBLEM, violations=[]), "Bad request"),
        ({"error": "invalid_token", "error_description": "Access token expired"}, "Access token expired"),
        ({"violations": [{"name": "page"}]}, "page: ?"),
        (b"<html>gateway down</html>", "<html>gateway down</html>"),
        (["odd"], "['odd']"),
    ],
)
def test_problem_detail_reads_every_error_body_into_one_line(payload: Any, expected: str) -> None:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    assert problem_detail(httpx.Response(400, content=content)) == expected
