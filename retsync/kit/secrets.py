"""Secret references in the config: `env:VAR`, `file:/path`, `keyring:service/username`.

The merchant's credentials stay on their server; the config file may hold only
a pointer to them. Every resolved value is remembered so the log pipeline can
blank it wherever it would otherwise appear.

A reference is read the first time its value is used, not when the config is loaded: under systemd the
credentials exist only inside the service (`LoadCredential=`), and the admin's `retsync returns list` in a
shell needs none of them. Commands that talk to a channel ask for its secrets up front (`unreadable_secrets`),
so a missing one still stops them before anything is sent, naming the key.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Annotated

import keyring
import keyring.errors
from pydantic import BaseModel, BeforeValidator, PlainSerializer, SecretStr

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


REFERENCE_SCHEMES = ("env", "file", "keyring")


def is_reference(value: str) -> bool:
    """`env:…`, `file:…` or `keyring:…`: a pointer to a secret, not a value."""
    scheme, sep, _ = value.partition(":")
    return bool(sep) and scheme in REFERENCE_SCHEMES


def check_reference(reference: str) -> None:
    """What can be told of a reference without reading it: its shape."""
    scheme, _, rest = reference.partition(":")
    if scheme == "keyring":
        service, slash, username = rest.partition("/")
        if not slash or not service or not username:
            raise SecretError(f"`keyring:{rest}` must look like `keyring:service/username`")
    if scheme in ("env", "file") and not rest:
        raise SecretError(f"`{scheme}:` names no {'variable' if scheme == 'env' else 'file'}")


class SecretRef(SecretStr):
    """A credential named by its reference, read when first used and then kept (masked when printed)."""

    def __init__(self, reference: str) -> None:
        super().__init__(reference)
        self._value: str | None = None
        self._lock = threading.Lock()

    @property
    def reference(self) -> str:
        """What the config says (`env:BOL_SECRET`), never the secret itself unless the config holds it plainly."""
        return self._secret_value if is_reference(self._secret_value) else "(the value itself)"

    def get_secret_value(self) -> str:
        with self._lock:
            if self._value is None:
                self._value = resolve(self._secret_value)
            return self._value


def _reference_for_pydantic(value: object) -> object:
    if isinstance(value, SecretRef):
        return value
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        check_reference(value)
        if not is_reference(value):
            remember(value)
        return SecretRef(value)
    return value


def _shown(value: SecretStr) -> str:
    """In JSON (`retsync config check`): the reference, which tells the admin where the secret comes from and
    is no secret itself; a value written plainly into the config stays masked."""
    reference = value.reference if isinstance(value, SecretRef) else None
    return reference if reference and is_reference(reference) else "**********"


Secret = Annotated[SecretStr, BeforeValidator(_reference_for_pydantic), PlainSerializer(_shown, when_used="json")]
"""A config field holding a credential: read from its reference when first used, masked when printed."""


def unreadable_secrets(model: BaseModel, prefix: str = "") -> list[tuple[str, str]]:
    """(key, why) for every secret of `model` (and its nested models) that cannot be read here; reading the
    rest as a side effect, so they are known to the log filter before anything could print them."""
    problems: list[tuple[str, str]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        if isinstance(value, SecretStr):
            try:
                value.get_secret_value()
            except SecretError as exc:
                problems.append((key, str(exc)))
        elif isinstance(value, BaseModel):
            problems.extend(unreadable_secrets(value, f"{key}."))
    return problems


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
