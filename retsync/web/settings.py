"""The `[web]` table: where the console listens and whom it trusts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    listen: str = Field(default="127.0.0.1:8080", description="HOST:PORT the web console binds to")
