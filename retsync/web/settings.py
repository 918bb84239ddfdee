"""The `[web]` table: where the console listens and whom it trusts."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from retsync.kit.settings import Duration


def split_listen(value: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets) → (host, port); ValueError naming what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT (say 127.0.0.1:8080)")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


ROLES = ("viewer", "decider", "admin")
"""viewer: sees returns (customer contact details masked); decider: also decides and retries failed decisions,
sees contact details; admin: also records a decision the guards refuse ("record anyway")."""


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    listen: str = Field(default="127.0.0.1:8080", description="HOST:PORT the web console binds to")
    tls_cert: str | None = Field(default=None, description="PEM certificate file: the console serves HTTPS itself")
    tls_key: str | None = Field(default=None, description="PEM private key file of tls_cert")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses of the reverse proxy whose user header is believed; from any other address the "
                    "header is ignored")
    user_header: str = Field(default="X-Remote-User",
                             description="header in which the trusted proxy names the logged-in user")
    session_lifetime: Duration = Field(default=timedelta(hours=12), description="a login lasts this long")
    login_attempts: int = Field(default=5, ge=1, le=1000,
                                description="failed logins allowed per address and user name within login_window")
    login_window: Duration = Field(default=timedelta(minutes=15), description="window of login_attempts")
    language: str = Field(default="en", description="language of the console before a user picks one (en, pl)")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_listen(value)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for address in value:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"trusted_proxies: {address!r} is not an IP address") from None
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> WebSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both (HTTPS) or neither")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def exposure_problem(self, listen: str | None = None) -> str | None:
        """Why listening on `listen` would expose logins in clear text, or None: beyond loopback the console needs
        TLS of its own or a reverse proxy in front of it."""
        host, _ = split_listen(listen or self.listen)
        if is_loopback(host) or self.tls or self.trusted_proxies:
            return None
        return (f"[web] listen {listen or self.listen} is reachable beyond this machine without TLS: set "
                f"tls_cert and tls_key, or put a reverse proxy with HTTPS in front and name it in trusted_proxies")
