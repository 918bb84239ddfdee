"""The emulator as a stand-in for bol: deterministic, fast at scale, and strict where bol is strict."""

from __future__ import annotations

import time

import httpx
import pytest

from retsync_connectors.bol.emulator import MEDIA_TYPE, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, BolEmulator

from .conftest import bearer, listed


def first_page(emu: BolEmulator, handled: bool = False, method: str = "FBR", page: int = 1) -> list[dict[str, object]]:
    with httpx.Client(base_url="https://api.bol.com", transport=emu.transport(), headers=bearer(emu)) as client:
        params = {"handled": str(handled).lower(), "fulfilment-method": method, "page": page}
        return client.get("/retailer/returns", params=params).json().get("returns", [])


def test_the_same_seed_gives_the_same_returns_and_another_seed_does_not() -> None:
    assert first_page(BolEmulator(seed=5, n_returns=300)) == first_page(BolEmulator(seed=5, n_returns=300))
    assert first_page(BolEmulator(seed=5, n_returns=300)) != first_page(BolEmulator(seed=6, n_returns=300))
    assert BolEmulator(seed=5, n_returns=300).truth() == BolEmulator(seed=5, n_returns=300).truth()


def test_lists_are_sorted_as_bol_sorts_them() -> None:
    emu = BolEmulator(seed=5, n_returns=600)
    unhandled = [entry["registrationDateTime"] for entry in first_page(emu, handled=False)]
    handled = [entry["registrationDateTime"] for entry in first_page(emu, handled=True)]
    assert unhandled == sorted(unhandled), "unhandled: oldest first"
    assert handled == sorted(handled, reverse=True), "handled: newest first"
    later = [entry["registrationDateTime"] for entry in first_page(emu, handled=True, page=2)]
    assert later and max(later) <= min(handled)


def test_every_return_is_listed_exactly_once() -> None:
    emu = BolEmulator(seed=8, n_returns=700)
    ids = [i for method in ("FBR", "FBB") for handled in (False, True) for i in listed(emu, method, handled)]
    assert len(ids) == len(set(ids)) == 700
    assert set(ids) == emu.truth()["returns"]


def test_a_large_sandbox_serves_deep_pages() -> None:
    """How fast it is built and served is the benchmarks' business (bench/); here only that deep pages exist."""
    emu = BolEmulator(seed=1, n_returns=100_000, log_requests=False)
    deep = first_page(emu, handled=True, page=1000)
    assert len(deep) == 50
    assert len({entry["returnId"] for entry in deep}) == 50


def test_a_handled_return_moves_from_the_open_list_to_the_handled_list() -> None:
    emu = BolEmulator(seed=5, n_returns=300)
    entry = first_page(emu)[0]
    rma_id = entry["returnItems"][0]["rmaId"]  # type: ignore[index]
    emu.handle_externally(rma_id, "RETURN_RECEIVED")

    assert entry["returnId"] not in listed(emu, "FBR", handled=False)
    assert entry["returnId"] in listed(emu, "FBR", handled=True)
    assert emu.item(rma_id)["processingResults"][-1]["processingResult"] == "ACCEPTED"
    assert emu.handled_log == {}, "only handlings that came through the API are logged"
    assert emu.acts_applied() == [], "the seller dashboard's handlings are not retsync's acts"


def test_a_new_return_appears_at_the_end_of_the_open_list() -> None:
    emu = BolEmulator(seed=5, n_returns=300)
    added = emu.add_return(fulfilment_method="FBB", quantity=2)

    assert listed(emu, "FBB", handled=False)[-1] == added["returnId"]
    truth = emu.truth()
    assert added["returnId"] in truth["returns"] and added["returnItems"][0]["rmaId"] in truth["rmas"]
    assert added["returnItems"][0]["orderId"] in truth["orders"]
    assert emu.item(added["returnItems"][0]["rmaId"])["expectedQuantity"] == 2


def test_the_token_endpoint_wants_basic_credentials_and_the_grant_in_the_body() -> None:
    emu = BolEmulator(n_returns=10)
    with httpx.Client(transport=emu.transport()) as client:
        good = client.post("https://login.bol.com/token", data={"grant_type": "client_credentials"},
                           auth=(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET))
        wrong = client.post("https://login.bol.com/token", data={"grant_type": "client_credentials"},
                            auth=(SANDBOX_CLIENT_ID, "guess"))
        in_query = client.post("https://login.bol.com/token", params={"client_id": SANDBOX_CLIENT_ID,
                                                                       "client_secret": SANDBOX_CLIENT_SECRET})
        no_grant = client.post("https://login.bol.com/token", auth=(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET))
        api = client.get("https://api.bol.com/retailer/returns",
                         headers={"Authorization": f"Bearer {good.json()['access_token']}", "Accept": MEDIA_TYPE})

    assert good.status_code == 200
    assert set(good.json()) == {"access_token", "token_type", "expires_in", "scope"}
    assert (good.json()["token_type"], good.json()["expires_in"]) == ("Bearer", 299)
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert in_query.status_code == 400 and no_grant.status_code == 400
    assert api.status_code == 200


def test_every_api_answer_carries_rate_limit_headers_and_limits_bite() -> None:
    emu = BolEmulator(seed=3, n_returns=30, rate_limit=2, rate_window=30)
    with httpx.Client(base_url="https://api.bol.com", transport=emu.transport(), headers=bearer(emu)) as client:
        answers = [client.get("/retailer/returns") for _ in range(3)]
        other_endpoint = client.get("/retailer/returns/10000001")

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["1", "0", "0"]
    assert all(a.headers["x-ratelimit-limit"] == "2" and int(a.headers["x-ratelimit-reset"]) >= 1 for a in answers)
    assert int(answers[2].headers["retry-after"]) >= 1
    assert other_endpoint.status_code == 200, "limits are per endpoint"


def test_a_process_finishes_only_after_enough_polls_and_only_once() -> None:
    emu = BolEmulator(seed=5, n_returns=300, process_polls_until_done=2)
    entry = first_page(emu)[0]
    return_id, rma_id = entry["returnId"], entry["returnItems"][0]["rmaId"]  # type: ignore[index]
    with httpx.Client(base_url="https://api.bol.com", transport=emu.transport(), headers=bearer(emu)) as client:
        process = client.put(f"/retailer/returns/{rma_id}", content=b'{"handlingResult":"EXCHANGE_PRODUCT","quantityReturned":1}',
                             headers={"content-type": MEDIA_TYPE}).json()
        url = f"/shared/process-status/{process['processStatusId']}"
        first = client.get(url).json()["status"]
        handled_meanwhile = emu.item(rma_id)["handled"]
        statuses = [client.get(url).json()["status"] for _ in range(3)]

    assert (first, handled_meanwhile) == ("PENDING", False)
    assert statuses == ["SUCCESS"] * 3
    assert emu.handled_log == {rma_id: ["EXCHANGE_PRODUCT"]}
    assert emu.item(rma_id)["processingResults"][-1]["handlingResult"] == "EXCHANGE_PRODUCT"
    assert emu.acts_applied() == [("handling", return_id, rma_id, "EXCHANGE_PRODUCT")], "one entry, once"


def test_still_approved_only_changes_an_earlier_exchange_repair_or_rejection() -> None:
    emu = BolEmulator(seed=5, n_returns=300, process_polls_until_done=0)
    first, second = (entry["returnItems"][0]["rmaId"] for entry in first_page(emu)[:2])  # type: ignore[index]
    emu.handle_externally(second, "REPAIR_PRODUCT")
    with httpx.Client(base_url="https://api.bol.com", transport=emu.transport(), headers=bearer(emu)) as client:
        body = b'{"handlingResult":"STILL_APPROVED","quantityReturned":1}'
        refused = client.put(f"/retailer/returns/{first}", content=body, headers={"content-type": MEDIA_TYPE}).json()
        allowed = client.put(f"/retailer/returns/{second}", content=body, headers={"content-type": MEDIA_TYPE}).json()

    assert refused["status"] == "FAILURE" and "STILL_APPROVED" in refused["errorMessage"]
    assert allowed["status"] == "SUCCESS"
    assert emu.handled_log == {second: ["STILL_APPROVED"]}


def test_the_base_fault_switches_work_against_bol_routes() -> None:
    emu = BolEmulator(seed=5, n_returns=30)
    with httpx.Client(base_url="https://api.bol.com", transport=emu.transport()) as client:

        def get() -> httpx.Response:
            return client.get("/retailer/returns", headers=bearer(emu))

        emu.inject("status", status=429, retry_after="1")
        limited = get()
        emu.inject("expire_tokens")
        expired = get()
        emu.inject("malformed")
        malformed = get()
        emu.inject("wrong_shape")
        wrong_shape = get()
        emu.inject("drop")
        with pytest.raises(httpx.ConnectError):
            get()
        emu.inject("truncated")
        with pytest.raises(httpx.RemoteProtocolError):
            get()
        healthy = get()

    assert (limited.status_code, limited.headers["retry-after"]) == (429, "1")
    assert expired.status_code == 401
    with pytest.raises(ValueError):
        malformed.json()
    assert wrong_shape.status_code == 200 and not isinstance(wrong_shape.json()["returns"], list)
    assert healthy.status_code == 200 and isinstance(healthy.json()["returns"], list)


def test_a_handling_finishes_by_itself_when_nobody_polls() -> None:
    emu = BolEmulator(seed=5, n_returns=300, process_seconds=0.05, process_polls_until_done=99)
    rma_id = first_page(emu)[0]["returnItems"][0]["rmaId"]  # type: ignore[index]
    with httpx.Client(base_url="https://api.bol.com", transport=emu.transport(), headers=bearer(emu)) as client:
        client.put(f"/retailer/returns/{rma_id}", content=b'{"handlingResult":"RETURN_RECEIVED","quantityReturned":1}',
                   headers={"content-type": MEDIA_TYPE})
        soon = client.get("/shared/process-status", params={"entity-id": rma_id, "event-type": "HANDLE_RETURN_ITEM"})
        time.sleep(0.06)
        later = client.get("/shared/process-status", params={"entity-id": rma_id, "event-type": "HANDLE_RETURN_ITEM"})

    assert [p["status"] for p in soon.json()["processStatuses"]] == ["PENDING"]
    assert [p["status"] for p in later.json()["processStatuses"]] == ["SUCCESS"]
    assert emu.handled_log == {rma_id: ["RETURN_RECEIVED"]}
