"""The `manual` connector: a channel whose returns come in without a channel API.

People enter them (`retsync returns add`), a return service's export is imported (`retsync import returns`, or
dropped into `import_dir`), or a return service, shop plug-in or automation tool posts them to the webhook
(`POST /hooks/<channel>`). retsync itself is the channel's record, so `pull` has nothing to read.

A decision on a manual return has no marketplace to be carried out at: the merchant (who recorded it) is the
channel. "Pushing" it therefore records it as carried out (`pushed`, the act's key as reference) and nothing
more: the customer hears of it through the notification outbox, which writes one `customer_decided` e-mail per
return from a pushed decision, and only where the channel's `notify_customers` and `[notify]` SMTP are on.
`unsupported` would be wrong: it says the decision never reached its channel and never will (and the customer
e-mail follows only a pushed decision), although nothing was left undone; `pending` forever would keep it in the
outbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from retsync.kit.contract import Capabilities, Connector, DecisionAct, Page, PullContext, PushResult, PushStatus, Stream
from retsync.kit.model import DecisionKind
from retsync.kit.secrets import Secret
from retsync.kit.settings import ChannelSettings

_RECORDED = ("recorded in retsync, the channel of record; the customer is told by the customer_decided e-mail "
             "(once, where notify_customers is on)")


class ManualSettings(ChannelSettings):
    """The `[channels.<name>]` keys of a manual channel, beside the ones every channel has."""

    import_dir: Path | None = Field(
        default=None, description="a folder the daemon watches for exports (CSV/XLSX) to import into this channel; "
        "each file is moved to done/ or failed/ beside a report")
    import_format: Literal["csv", "xlsx"] | None = Field(
        default=None, description="the format of the files in import_dir; unset: by the file's extension")
    mapping: str | None = Field(
        default=None, description="the column mapping of this channel's exports: a shipped one by name "
        "(generic, wygodne-zwroty, szybkie-zwroty, reet, selesto) or the path of a TOML file")
    natural_key: list[str] | None = Field(
        default=None, description="the mapped fields that name one return in an export (default: the mapping's "
        "`natural_key`): a row with the same values updates that return, never adds a second")
    orders_from: list[str] = Field(
        default_factory=list, description="channels whose orders this channel's returns refer to (empty: any "
        "channel); an order number stored on two of them is linked only when this names one")
    webhook_secret: Secret | None = Field(
        default=None, description="the shared secret the webhook's HMAC-SHA256 signature is made with; unset: "
        "POST /hooks/<channel> is refused for this channel. Write env:VAR, file:/path or keyring:service/user")
    tracking_carrier: str | None = Field(
        default=None, description="the carrier of the tracking numbers in this channel's returns when a row or "
        "request names none (e.g. inpost)")


class ManualConnector(Connector[ManualSettings]):
    """Returns entered by people, imported from files or posted to the webhook."""

    name = "manual"
    title = "Manual entry / import"
    settings_model = ManualSettings
    capabilities = Capabilities(
        streams=(),
        decisions={kind: _RECORDED for kind in DecisionKind},
        unsupported={},
        entered_by_people=True,
    )

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        """Nothing to read: the returns of a manual channel are written straight into the store."""
        return iter(())

    def act(self, act: DecisionAct) -> PushResult:
        """Done as soon as asked (see the module's docstring): retsync is this channel's record."""
        return PushResult(PushStatus.PUSHED, f"{act.kind} recorded on the manual return {act.return_external_id}",
                          reference=act.key, result={"recorded": act.kind.value})
