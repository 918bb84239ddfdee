"""Secret references in the config: `env:VAR`, `file:/path`, `keyring:service/username`.

The merchant's credentials stay on their server; the config file may hold only
a pointer to them. Every resolved value is remembered so the log pipeline can
blank it wherever it would otherwise appear.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Annotated

import keyring
import keyring.errors
from pydantic import BeforeValidator, SecretStr

KEYRING_SERVICE = "retsync"

_known: set[str] = set()
_known_lock = threading.Lock()


class SecretError(ValueError):
    """A secret reference that cannot be resolved; the message says what to do."""


def remember(value: str) -> None:
    """Mark a value as secret so logs never show it."""
    if value and len(value) >= 4:
        with _known_lock:
            _known.add(value)


def known_secrets() -> frozenset[str]:
    with _known_lock:
        return frozenset(_known)


def resolve(reference: str) -> str:
    """Turn a reference into the secret it points to; a plain string is taken as the secret itself."""
    scheme, sep, rest = reference.partition(":")
    if not sep or scheme not in {"env", "file", "keyring"}:
        value = reference
    elif scheme == "env":
        if rest not in os.environ:
            raise SecretError(f"environment variable {rest} is not set (the value is `env:{rest}`)")
        value = os.environ[rest]
    elif scheme == "file":
        path = Path(os.path.expandvars(rest))
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SecretError(f"cannot read secret file {path}: {exc.strerror or exc}") from None
    else:
        service, slash, username = rest.partition("/")
        if not slash or not service or not username:
            raise SecretError(f"`keyring:{rest}` must look like `keyring:service/username`")
        try:
            found = keyring.get_password(service, username)
        except keyring.errors.KeyringError as exc:
            raise SecretError(f"keyring is not usable here ({exc}); use env: or file: instead") from None
        if found is None:
            raise SecretError(
                f"no secret stored in the keyring for {service}/{username}; "
                f"store it with `retsync secret set` or change the reference"
            )
        value = found
    remember(value)
    return value


def _resolve_for_pydantic(value: object) -> object:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        return SecretStr(resolve(value))
    return value


Secret = Annotated[SecretStr, BeforeValidator(_resolve_for_pydantic)]
"""A config field holding a credential: resolved from its reference, masked when printed."""


def keyring_username(channel: str, key: str) -> str:
    return f"{channel}.{key}"


def store_in_keyring(channel: str, key: str, value: str) -> str:
    """Store a secret for `retsync secret set`; returns the reference to write in the config."""
    username = keyring_username(channel, key)
    try:
        keyring.set_password(KEYRING_SERVICE, username, value)
    except keyring.errors.KeyringError as exc:
        raise SecretError(
            f"no usable keyring backend on this machine ({exc}); "
            f"put the secret in a file readable only by retsync and use `file:/path` instead"
        ) from None
    return f"keyring:{KEYRING_SERVICE}/{username}"
