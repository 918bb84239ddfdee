"""Every kind of answer the Amazon sandbox gives validates against Amazon's own model files (Swagger 2.0) for
that path, method and status; the report columns it writes are the ones NOTES.md documents.

Object schemas are checked strictly (no undeclared fields), so a misspelt field in the sandbox fails here instead
of teaching the connector a field Amazon never sends.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from retsync.testing.specs import spec_file, strict
from retsync_connectors.amazon.client import USAGE_PLANS
from retsync_connectors.amazon.emulator import (
    PLANS,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    AmazonEmulator,
)
from retsync_connectors.amazon.mapping import (
    ADJUSTMENT_COLUMNS,
    ADJUSTMENT_FEED,
    FBA_COLUMNS,
    FBA_REPORT,
    MFN_COLUMNS,
    MFN_REPORT,
    read_flat_file,
)
from retsync_connectors.amazon.sandbox_data import FBA_HEADER, MARKETPLACE, MFN_HEADER

API = "amazon-sp-api"


class Spec:
    def __init__(self, name: str) -> None:
        self.document = json.loads(spec_file(API, name).read_text(encoding="utf-8"))
        self.uri = f"urn:amazon:{name}"
        resource = Resource.from_contents(strict(copy.deepcopy(self.document)), default_specification=DRAFT4)
        self.registry: Registry[Any] = Registry().with_resource(self.uri, resource)

    def check(self, response: httpx.Response, path: str, method: str) -> Any:
        """The answer against the schema the model file declares for this path, method and status."""
        declared = self.document["paths"][path][method.lower()]["responses"]
        status = str(response.status_code)
        assert status in declared, f"{method} {path} answered {status}; the model declares {sorted(declared)}"
        schema = declared[status]["schema"]
        body = response.json()
        validator = Draft4Validator({"$ref": self.uri + schema["$ref"]}, registry=self.registry)
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                    for e in validator.iter_errors(body)]
        assert not problems, f"{method} {path} {status}:\n" + "\n".join(problems[:20])
        for header in declared[status].get("headers", {}):
            assert header.lower() in response.headers, f"{method} {path} {status} lacks the {header} header"
        return body


@pytest.fixture(scope="module")
def reports() -> Spec:
    return Spec("reports_2021-06-30.json")


@pytest.fixture(scope="module")
def feeds() -> Spec:
    return Spec("feeds_2021-06-30.json")


@pytest.fixture(scope="module")
def orders() -> Spec:
    return Spec("ordersV0.json")


@pytest.fixture
def emu() -> AmazonEmulator:
    return AmazonEmulator.sized(seed=5, returns=20)


@pytest.fixture
def api(emu: AmazonEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url="https://sellingpartnerapi-eu.amazon.com", transport=emu.transport()) as client:
        token = client.post("/auth/o2/token", data={
            "grant_type": "refresh_token", "refresh_token": SANDBOX_REFRESH_TOKEN, "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET}).json()
        assert token["token_type"] == "bearer" and token["expires_in"] == 3600
        assert token["access_token"].startswith("Atza|") and token["refresh_token"] == SANDBOX_REFRESH_TOKEN
        client.headers["x-amz-access-token"] = token["access_token"]
        yield client


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def test_login_with_amazon_refuses_a_wrong_refresh_token(emu: AmazonEmulator) -> None:
    with httpx.Client(base_url="https://api.amazon.com", transport=emu.transport()) as client:
        refused = client.post("/auth/o2/token", data={"grant_type": "refresh_token", "refresh_token": "Atzr|nope",
                                                     "client_id": SANDBOX_CLIENT_ID,
                                                     "client_secret": SANDBOX_CLIENT_SECRET})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_the_reports_lifecycle(api: httpx.Client, emu: AmazonEmulator, reports: Spec) -> None:
    emu.report_polls = 2
    now = datetime.now(timezone.utc)
    created = api.post("/reports/2021-06-30/reports", json={
        "reportType": MFN_REPORT, "marketplaceIds": [MARKETPLACE], "dataStartTime": _iso(now - timedelta(days=59)),
        "dataEndTime": _iso(now)})
    report_id = reports.check(created, "/reports/2021-06-30/reports", "POST")["reportId"]
    statuses = []
    for _ in range(3):
        answer = api.get(f"/reports/2021-06-30/reports/{report_id}")
        statuses.append(reports.check(answer, "/reports/2021-06-30/reports/{reportId}", "GET")["processingStatus"])
    assert statuses == ["IN_QUEUE", "IN_PROGRESS", "DONE"]
    document_id = answer.json()["reportDocumentId"]
    document = reports.check(api.get(f"/reports/2021-06-30/documents/{document_id}"),
                             "/reports/2021-06-30/documents/{reportDocumentId}", "GET")
    assert document["compressionAlgorithm"] == "GZIP"
    content = httpx.Client(transport=emu.transport()).get(document["url"])
    flat = read_flat_file(gzip.decompress(content.content).decode(content.charset_encoding or "utf-8"))
    assert flat.header == MFN_COLUMNS and flat.rows


def test_a_fatal_report_and_the_error_answers(api: httpx.Client, emu: AmazonEmulator, reports: Spec) -> None:
    emu.fatal_reports = 1
    created = api.post("/reports/2021-06-30/reports", json={"reportType": FBA_REPORT, "marketplaceIds": [MARKETPLACE]})
    report_id = reports.check(created, "/reports/2021-06-30/reports", "POST")["reportId"]
    fatal = reports.check(api.get(f"/reports/2021-06-30/reports/{report_id}"), "/reports/2021-06-30/reports/{reportId}",
                          "GET")
    assert fatal["processingStatus"] == "FATAL" and "reportDocumentId" not in fatal
    now = datetime.now(timezone.utc)
    too_long = api.post("/reports/2021-06-30/reports", json={
        "reportType": MFN_REPORT, "marketplaceIds": [MARKETPLACE], "dataStartTime": _iso(now - timedelta(days=61)),
        "dataEndTime": _iso(now)})
    reports.check(too_long, "/reports/2021-06-30/reports", "POST")
    reports.check(api.get("/reports/2021-06-30/reports/nope"), "/reports/2021-06-30/reports/{reportId}", "GET")
    unauthorised = api.get(f"/reports/2021-06-30/reports/{report_id}", headers={"x-amz-access-token": "Atza|old"})
    assert unauthorised.status_code == 403
    reports.check(unauthorised, "/reports/2021-06-30/reports/{reportId}", "GET")


def test_the_usage_plan_answers_429(api: httpx.Client, reports: Spec) -> None:
    answers = [api.post("/reports/2021-06-30/reports", json={"reportType": FBA_REPORT, "marketplaceIds": [MARKETPLACE]})
               for _ in range(16)]
    assert [a.status_code for a in answers] == [202] * 15 + [429], "createReport: burst 15, then one a minute"
    reports.check(answers[-1], "/reports/2021-06-30/reports", "POST")
    assert "x-amzn-RateLimit-Limit".lower() in answers[0].headers


def test_the_feeds_lifecycle_and_its_processing_report(api: httpx.Client, emu: AmazonEmulator, feeds: Spec) -> None:
    emu.feed_polls = 1
    order_id, entries = next(iter(emu.data.order_items.items()))
    document = feeds.check(api.post("/feeds/2021-06-30/documents", json={"contentType": "text/tab-separated-values"}),
                           "/feeds/2021-06-30/documents", "POST")
    rows = [{"order-id": order_id, "order-item-id": entries[0]["OrderItemId"], "adjustment-reason-code":
             "CustomerReturn", "currency": "EUR", "item-price-adj": "1.00"},
            {"order-id": order_id, "order-item-id": "0", "adjustment-reason-code": "CustomerReturn",
             "currency": "EUR", "item-price-adj": "1.00"}]
    content = "\t".join(ADJUSTMENT_COLUMNS) + "\n" + "".join(
        "\t".join(row.get(c, "") for c in ADJUSTMENT_COLUMNS) + "\n" for row in rows)
    assert httpx.Client(transport=emu.transport()).put(document["url"], content=content.encode()).status_code == 200
    created = feeds.check(api.post("/feeds/2021-06-30/feeds", json={
        "feedType": ADJUSTMENT_FEED, "marketplaceIds": [MARKETPLACE],
        "inputFeedDocumentId": document["feedDocumentId"]}), "/feeds/2021-06-30/feeds", "POST")
    seen = [feeds.check(api.get(f"/feeds/2021-06-30/feeds/{created['feedId']}"), "/feeds/2021-06-30/feeds/{feedId}",
                        "GET") for _ in range(2)]
    assert [feed["processingStatus"] for feed in seen] == ["IN_PROGRESS", "DONE"]
    listed = feeds.check(api.get("/feeds/2021-06-30/feeds", params={"feedTypes": ADJUSTMENT_FEED}),
                         "/feeds/2021-06-30/feeds", "GET")
    assert [feed["feedId"] for feed in listed["feeds"]] == [created["feedId"]]
    result = feeds.check(api.get(f"/feeds/2021-06-30/documents/{seen[-1]['resultFeedDocumentId']}"),
                         "/feeds/2021-06-30/documents/{feedDocumentId}", "GET")
    report = httpx.Client(transport=emu.transport()).get(result["url"]).text
    assert "Number of records processed\t\t2" in report and "Number of records successful\t\t1" in report
    assert re.search(r"^2\t.*\tError\t", report, flags=re.M)
    assert emu.acts_applied() == [("refund", order_id, entries[0]["OrderItemId"])]
    feeds.check(api.get("/feeds/2021-06-30/feeds/nope"), "/feeds/2021-06-30/feeds/{feedId}", "GET")


def test_orders_and_their_items(api: httpx.Client, emu: AmazonEmulator, orders: Spec) -> None:
    for order_id in list(emu.data.orders)[:5]:
        order = orders.check(api.get(f"/orders/v0/orders/{order_id}"), "/orders/v0/orders/{orderId}", "GET")
        assert order["payload"]["AmazonOrderId"] == order_id
        listed = orders.check(api.get(f"/orders/v0/orders/{order_id}/orderItems"),
                              "/orders/v0/orders/{orderId}/orderItems", "GET")
        assert listed["payload"]["OrderItems"]
    orders.check(api.get("/orders/v0/orders/999-0000000-0000000"), "/orders/v0/orders/{orderId}", "GET")


def test_the_report_columns_are_the_ones_notes_md_documents() -> None:
    """The header rows of the two returns reports and the adjustment feed, exact strings, in NOTES.md's order."""
    notes = spec_file(API, "NOTES.md").read_text(encoding="utf-8")

    def documented(after: str, until: str) -> list[str]:
        section = notes[notes.index(after):]
        section = section[:section.index(until)]
        return re.findall(r"`([^`]+)`", section)

    assert tuple(documented("Header row (exact strings):", "One row per returned item line")) == MFN_COLUMNS \
        == MFN_HEADER
    fba = documented("FBA customer returns, tab-delimited", "`detailed-disposition` values")
    assert tuple(name for name in fba if name != "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA") == FBA_COLUMNS \
        == FBA_HEADER
    adjustment = documented("refunds) — columns", "XML twin")
    assert tuple(adjustment) == ADJUSTMENT_COLUMNS


def test_the_usage_plans_are_the_ones_each_operation_documents() -> None:
    """(rate, burst) of every operation used, read from its description's usage-plan table in the model files."""
    documented: dict[str, tuple[float, int]] = {}
    for name in ("reports_2021-06-30.json", "feeds_2021-06-30.json", "ordersV0.json"):
        for operations in json.loads(spec_file(API, name).read_text(encoding="utf-8"))["paths"].values():
            for operation in operations.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    found = re.search(r"\|\s*([\d.]+)\s*\|\s*(\d+)\s*\|", operation.get("description", ""))
                    if found:
                        documented[operation["operationId"]] = (float(found.group(1)), int(found.group(2)))
    assert PLANS == {name: documented[name] for name in PLANS} == USAGE_PLANS


def test_the_demo_sandbox_serves_faster_plans_and_says_so(api: httpx.Client) -> None:
    fast = AmazonEmulator.sized(seed=5, rate_scale=1000)
    with httpx.Client(base_url="https://sellingpartnerapi-eu.amazon.com", transport=fast.transport(),
                      headers={"x-amz-access-token": fast.issue_token(60)}) as client:
        answer = client.get(f"/orders/v0/orders/{next(iter(fast.data.orders))}")
    assert answer.status_code == 200 and answer.headers["x-amzn-RateLimit-Limit"] == "500"
