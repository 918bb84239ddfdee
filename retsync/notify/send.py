"""Handing one notification over: an e-mail to an SMTP server, or a signed JSON POST to the webhook.

Each function raises `SendFailed` with a message fit for `retsync channels`; `permanent` means retrying cannot
help (the server refused the recipient or the message), so the notification is marked failed at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

import httpx

from retsync.config import NotifySettings
from retsync.notify.address import NotOneAddress, single_address
from retsync.notify.templates import Message

SIGNATURE_HEADER = "X-Retsync-Signature"


class SendFailed(Exception):
    """`unreachable`: the server itself could not be used (down, TLS, login), so every other notification on the
    same transport would fail the same way; the pass stops using it instead of waiting out one timeout each."""

    def __init__(self, message: str, *, permanent: bool = False, unreachable: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.unreachable = unreachable


def one_address(text: str | None, whose: str) -> str:
    """The single e-mail address `text` holds, or SendFailed (permanent: the same text fails the same way)."""
    try:
        return single_address(text, whose)
    except NotOneAddress as exc:
        raise SendFailed(f"{exc}; not sent", permanent=True) from None


def message_id(notification_id: int, mail_from: str) -> str:
    """The same on every attempt, so a receiver that saw a repeat after a crash can drop it."""
    domain = mail_from.rpartition("@")[2] or "retsync.invalid"
    return f"<retsync-notification-{notification_id}@{domain}>"


def build_email(settings: NotifySettings, to: list[str], message: Message, notification_id: int,
                now: datetime) -> EmailMessage:
    assert settings.mail_from is not None, "config validation requires mail_from with smtp_host"
    mail = EmailMessage()
    mail["From"] = formataddr((settings.sender_name or "", settings.mail_from))
    mail["To"] = ", ".join(to)
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = message_id(notification_id, settings.mail_from)
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.body)
    return mail


def send_email(settings: NotifySettings, mail: EmailMessage) -> None:
    assert settings.smtp_host is not None
    context = ssl.create_default_context()
    timeout = settings.smtp_timeout.total_seconds()
    try:
        smtp: smtplib.SMTP
        if settings.smtp_security == "tls":
            smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        with smtp:
            if settings.smtp_security == "starttls":
                smtp.starttls(context=context)
            if settings.smtp_user:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                smtp.login(settings.smtp_user, password)
            smtp.send_message(mail)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise SendFailed(f"SMTP server refused the recipient ({', '.join(map(str, codes))})",
                         permanent=all(code >= 500 for code in codes)) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise SendFailed(f"SMTP login as smtp_user failed ({exc.smtp_code}); check smtp_user and "
                         f"smtp_password", unreachable=True) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise SendFailed(f"SMTP server {settings.smtp_host}: {exc} (check smtp_security)", unreachable=True) from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise SendFailed(f"SMTP server said {exc.smtp_code} {text}", permanent=exc.smtp_code >= 500
                         and not isinstance(exc, smtplib.SMTPSenderRefused)) from None
    except ssl.SSLError as exc:
        raise SendFailed(f"TLS with {settings.smtp_host}:{settings.smtp_port} failed: {exc.reason or exc} "
                         f"(check smtp_security: starttls for port 587, tls for 465)", unreachable=True) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SendFailed(f"cannot reach SMTP server {settings.smtp_host}:{settings.smtp_port}: "
                         f"{type(exc).__name__}: {exc}", unreachable=True) from None


def webhook_body(notification_id: int, kind: str, event_key: str, created_at: datetime, message: Message,
                 data: dict[str, Any]) -> bytes:
    return json.dumps({
        "id": notification_id, "event": kind, "key": event_key, "created_at": created_at.isoformat(),
        "subject": message.subject, "text": message.body, "data": data,
    }, ensure_ascii=False, sort_keys=True).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the exact body bytes>`, the value of X-Retsync-Signature."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def post_webhook(settings: NotifySettings, body: bytes, kind: str, notification_id: int,
                 transport: httpx.BaseTransport | None = None) -> None:
    assert settings.webhook_url is not None
    url = settings.webhook_url.get_secret_value()
    headers = {"Content-Type": "application/json", "User-Agent": "retsync", "X-Retsync-Event": kind,
               "X-Retsync-Delivery": str(notification_id)}
    if settings.webhook_secret is not None:
        headers[SIGNATURE_HEADER] = signature(settings.webhook_secret.get_secret_value(), body)
    try:
        with httpx.Client(timeout=settings.webhook_timeout.total_seconds(), transport=transport) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        # the message is stored with the notification: the URL (a credential) must not be in it
        reason = str(exc).replace(url, "the webhook URL")
        raise SendFailed(f"webhook not reachable: {type(exc).__name__}: {reason}", unreachable=True) from None
    if not response.is_success:
        raise SendFailed(f"webhook answered HTTP {response.status_code}: {response.text[:200]}")
