"""The `[carriers]` table (the parcel services whose tracking moves a return along) and the `[returns_webhook]`
table (the listener for returns posted from outside any channel API; the per-channel part of it, the secret, is in
each manual channel's table).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from pydantic import BaseModel, ByteSize, ConfigDict, Field, model_validator

from retsync.kit.secrets import Secret
from retsync.kit.settings import Duration

INPOST_PRODUCTION = "https://api-shipx-pl.easypack24.net"
INPOST_SANDBOX = "https://sandbox-api-shipx-pl.easypack24.net"


class InPostSettings(BaseModel):
    """`[carriers.inpost]`: InPost ShipX, whose tracking of a return parcel moves the return to in_transit and
    received."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_token: Secret = Field(description="the ShipX API token (Parcel Manager → My account → API); write "
                                          "env:VAR, file:/path or keyring:service/user")
    organization_id: int = Field(gt=0, description="your ShipX organization id (shown beside the token)")
    base_url: str = Field(default=INPOST_PRODUCTION, description="ShipX host; the sandbox is " + INPOST_SANDBOX)
    track_every: Duration = Field(
        default=timedelta(hours=1), description="how often each open return's parcel is looked up again")
    track_per_pass: int = Field(default=100, ge=1, description="parcels looked up per pass of the tracking job at "
                                                               "most, so a backlog is followed in turn, not at once")
    requests_per_second: float = Field(default=2.0, gt=0, description="client-side pacing of tracking requests")
    timeout: Duration = Field(default=timedelta(seconds=30), description="per tracking request")
    allow_insecure: bool = Field(default=False, description="accept a plain http:// base_url for a host other "
                                                            "than this machine")

    @model_validator(mode="after")
    def _secure(self) -> InPostSettings:
        """The token travels with every request: not in the clear across a network unless the merchant says so."""
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url {self.base_url!r} is not an http(s) URL")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1") and not self.allow_insecure:
            raise ValueError(f"base_url {self.base_url!r} is plain http:// to another machine: use https://, or set "
                             f"allow_insecure = true if you mean it")
        return self


class ReturnsWebhookSettings(BaseModel):
    """`[returns_webhook]`: the listener for returns posted to `POST /hooks/<channel>` (off unless the table is
    there). Each manual channel that takes posts has its own `webhook_secret`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", description="address to listen on; loopback unless a proxy in front "
                                                       "of it needs another")
    port: int = Field(default=8790, ge=1, le=65535, description="port to listen on")
    max_body: ByteSize = Field(default=ByteSize(256 * 1024), gt=0, description="largest request body accepted "
                                                                               "(bytes, or \"256KiB\")")
    max_clock_skew: Duration = Field(default=timedelta(minutes=5), description="how far a request's "
                                     "X-Retsync-Timestamp may be from this machine's clock")


class CarrierSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inpost: InPostSettings | None = None
