"""Exactly one e-mail address, or why not: for recipients that come from channel data and from the config.

A customer e-mail comes from channel data: `victim@example.com, second@evil.example` must not turn the merchant's
SMTP server into a mailer for a second recipient, and a line break must not add a header. So exactly one address,
parsed by the standard library, with nothing around it but a display name. The config's `team_emails` and
`mail_from` are checked by the same rule when the file is loaded, which is why this sits apart from sending:
the config module can use it without importing the senders (which import the config).
"""

from __future__ import annotations

from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import getaddresses


class NotOneAddress(ValueError):
    """The text is not exactly one valid address; the message says which and why."""


def single_address(text: str | None, whose: str) -> str:
    """The address `text` holds (display name dropped), or NotOneAddress naming `whose` address it was."""
    shown = repr(text)  # redacted by the log pipeline and before a notification's error is stored
    if not text or not text.strip():
        raise NotOneAddress(f"{whose} e-mail address is empty")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise NotOneAddress(f"{whose} e-mail address {shown} contains a line break or control character")
    found = [address for _, address in getaddresses([text]) if address]
    if len(found) != 1:
        raise NotOneAddress(f"{whose} e-mail address {shown} is not one address ({len(found)} found)")
    try:
        parsed = Address(addr_spec=found[0])
    except (HeaderParseError, ValueError, IndexError) as exc:
        raise NotOneAddress(f"{whose} e-mail address {shown} is not valid ({exc})") from None
    if not parsed.username or "." not in parsed.domain or parsed.domain.startswith(".") \
            or parsed.domain.endswith("."):
        raise NotOneAddress(f"{whose} e-mail address {shown} is not valid (needs name@domain.tld)")
    return parsed.addr_spec
