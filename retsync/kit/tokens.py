"""Where a channel's rotating refresh token lives between runs.

Some marketplaces hand out a new refresh token on every refresh and
retire the old one shortly after. Losing the new one means the merchant has
to sign in again, so it is written before the old one is given up: to the
system keyring when a working backend exists, else to a file only retsync can
read, replaced atomically so a crash mid-write leaves the last good token.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import keyring
import keyring.errors
from keyring.backends.fail import Keyring as FailKeyring

from retsync.kit.files import private_dir, replace_file
from retsync.kit.secrets import KEYRING_SERVICE, remember
from retsync.kit.settings import CHANNEL_NAME

Backend = Literal["auto", "keyring", "file"]


class TokenStoreError(Exception):
    """The token cannot be kept; the message says where and why."""


def keyring_works() -> bool:
    """True when a real keyring backend is configured (not the `fail` placeholder of headless servers)."""
    try:
        backend = keyring.get_keyring()
    except Exception:  # a broken keyring configuration is the same as none
        return False
    return not isinstance(backend, FailKeyring) and getattr(backend, "priority", 1) > 0


class TokenStore:
    """One channel's refresh token, in the keyring or in `<state_dir>/tokens/<channel>.json` (mode 0600)."""

    def __init__(self, channel: str, state_dir: Path, backend: Backend = "auto") -> None:
        if not CHANNEL_NAME.fullmatch(channel) or ".." in channel:  # the config refuses it; this is the last line
            raise TokenStoreError(f"channel name {channel!r} cannot name a token file")
        self.channel = channel
        self.path = Path(state_dir) / "tokens" / f"{channel}.json"
        self.backend: Literal["keyring", "file"] = (
            ("keyring" if keyring_works() else "file") if backend == "auto" else backend
        )
        self._lock = threading.Lock()

    @property
    def username(self) -> str:
        return f"{self.channel}.refresh_token"

    @property
    def location(self) -> str:
        """Where the token is, in words for a log line."""
        if self.backend == "keyring":
            return f"keyring {KEYRING_SERVICE}/{self.username}"
        return str(self.path)

    def load(self) -> str | None:
        with self._lock:
            token = self._load_keyring() if self.backend == "keyring" else self._load_file()
        if token:
            remember(token)
        return token or None

    def save(self, token: str) -> None:
        """Keep `token`; when this returns it survives a crash, and nothing before it was lost."""
        if not token:
            raise TokenStoreError("refusing to store an empty refresh token")
        remember(token)
        with self._lock:
            if self.backend == "keyring":
                self._save_keyring(token)
            else:
                self._save_file(token)

    def clear(self) -> None:
        with self._lock:
            if self.backend == "keyring":
                try:
                    keyring.delete_password(KEYRING_SERVICE, self.username)
                except keyring.errors.PasswordDeleteError:
                    pass
            else:
                self.path.unlink(missing_ok=True)

    # --- keyring ---------------------------------------------------------------------------

    def _load_keyring(self) -> str | None:
        try:
            return keyring.get_password(KEYRING_SERVICE, self.username)
        except keyring.errors.KeyringError as exc:
            raise TokenStoreError(f"cannot read the refresh token from the keyring: {exc}") from None

    def _save_keyring(self, token: str) -> None:
        try:
            keyring.set_password(KEYRING_SERVICE, self.username, token)
        except keyring.errors.KeyringError as exc:
            raise TokenStoreError(f"cannot store the refresh token in the keyring: {exc}") from None

    # --- file ------------------------------------------------------------------------------

    def _load_file(self) -> str | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise TokenStoreError(f"cannot read the refresh token file {self.path}: {exc}") from None
        token = data.get("refresh_token") if isinstance(data, dict) else None
        return token if isinstance(token, str) else None

    def _save_file(self, token: str) -> None:
        """Temp file, fsync, rename, fsync the folder: the file holds either the old token or the new one."""
        try:
            private_dir(self.path.parent)
            replace_file(self.path, json.dumps({"refresh_token": token,
                                                "saved_at": datetime.now(timezone.utc).isoformat()}))
        except OSError as exc:
            raise TokenStoreError(f"cannot write the refresh token file {self.path}: {exc.strerror or exc}") from None
