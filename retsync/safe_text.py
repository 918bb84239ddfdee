"""Text from a channel made harmless where a person reads it: a terminal, a spreadsheet, a chat tool.

Reasons, titles, names and error bodies are written by customers and by channels, not by us. Printed raw, an
escape sequence clears the admin's screen, retitles the window or hides a link (OSC 8); a bidi override makes
`exe.txt` read as `txt.exe`; a CSV cell starting with `=` is a live formula once the merchant opens the file in
Excel; `<!channel>` in a webhook text pings a whole Slack workspace. Each function here neutralises one of these
for one destination, and nothing else: the database keeps what the channel sent.
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls, DEL, C1 controls (0x9b and 0x9d start 8-bit CSI and OSC), the bidi embeddings, overrides and
# isolates, and the line and paragraph separators some terminals break lines on.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                                "\u2028\u2029]")

SPREADSHEET_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these is read as a formula by Excel, LibreOffice or Google Sheets (OWASP)."""

_CHAT_MENTION = re.compile(r"@(?=\w)")
_MARKDOWN_LINK = re.compile(r"\]\(")
_ZERO_WIDTH_SPACE = "\u200b"


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(value: object, *, keep_newlines: bool = False) -> str:
    """The text with every control character shown as `\\x1b`-style escapes, so nothing in it reaches the terminal
    as a command. `keep_newlines` keeps line feeds and tabs for text laid out over several lines (an error with
    its hint); a table cell or a one-line message shows them escaped too, so a row stays one row."""
    text = "" if value is None else str(value)
    return (_CONTROL_BUT_LINES if keep_newlines else _CONTROL).sub(_visible, text)


def for_spreadsheet(value: Any) -> Any:
    """A CSV cell as a spreadsheet cannot execute it: text starting with a formula character gets a leading `'`
    (which Excel and LibreOffice hide and treat as "this is text"); control characters are escaped as for a
    terminal. Numbers stay numbers: retsync writes quantities and amounts as numbers, never text, so a refund of
    -5 is still -5."""
    if not isinstance(value, str):
        return value
    text = for_terminal(value, keep_newlines=True)
    return "'" + text if text.startswith(SPREADSHEET_TRIGGERS) else text


def for_chat(value: object) -> str:
    """Text for a chat message built by a webhook receiver: no markup of the common chat tools survives.

    `&`, `<`, `>` are entity-escaped (Slack and Mattermost read `<!channel>`, `<@U123>`, `<https://x|text>` and
    Teams `<at>` only through them); an `@` before a word gets a zero-width space (`@everyone`, `@here`, `@channel`,
    `@all`, `@user` in Discord, Mattermost and Teams); `](` of a markdown link gets one too, so `[text](url)` stays
    text. Control characters are escaped as for a terminal, line breaks kept."""
    text = for_terminal(value, keep_newlines=True)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _CHAT_MENTION.sub("@" + _ZERO_WIDTH_SPACE, text)
    return _MARKDOWN_LINK.sub("]" + _ZERO_WIDTH_SPACE + "(", text)
