"""The `[carriers]` table: the parcel services whose tracking moves a return along."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CarrierSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
