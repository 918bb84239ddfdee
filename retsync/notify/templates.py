"""The texts of the notifications: built-in English and Polish, each replaceable from `templates_dir`.

A template is plain text: a `Subject:` line, a blank line, then the body, with `$placeholders` filled from the
event. A template in `templates_dir/<language>/<name>.txt` wins over the built-in one, so a merchant can change
one e-mail without copying the others. A placeholder the event does not have is an error naming the file, not a
half-filled e-mail to a customer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any


class TemplateError(Exception):
    """A template is missing or broken; the message names the file and the problem."""


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


class Templates:
    def __init__(self, override_dir: Path | None = None) -> None:
        self.override_dir = override_dir

    def _read(self, language: str, name: str) -> tuple[str, str]:
        """(where it came from, text) of one template file."""
        if self.override_dir is not None:
            path = self.override_dir / language / name
            if path.is_file():
                return str(path), path.read_text(encoding="utf-8")
        built_in = resources.files("retsync.notify").joinpath("templates", language, name)
        if built_in.is_file():
            return f"built-in {language}/{name}", built_in.read_text(encoding="utf-8")
        where = f" or {self.override_dir / language / name}" if self.override_dir else ""
        raise TemplateError(f"no template {language}/{name} (built in{where})")

    def words(self, language: str) -> dict[str, str]:
        """`words.txt`: how decisions read in a customer e-mail and the greeting when the name is unknown."""
        _, text = self._read(language, "words.txt")
        words = {}
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                words[key.strip()] = value.strip()
        return words

    def render(self, language: str, kind: str, values: dict[str, Any]) -> Message:
        """The template's shape is checked before it is filled, and the subject is filled with one-line values: a
        line break in a channel's text (an order number, a reason) can neither break the template nor add a header."""
        where, text = self._read(language, f"{kind}.txt")
        head, sep, body = text.partition("\n\n")
        if not sep or not head.startswith("Subject:") or "\n" in head:
            raise TemplateError(f"{where}: must start with one `Subject: ...` line and a blank line")
        filled = {key: "" if value is None else str(value) for key, value in values.items()}
        subject = _fill(where, head, {key: _LINE_BREAKS.sub(" ", value) for key, value in filled.items()})
        return Message(subject=subject.removeprefix("Subject:").strip(),
                       body=_fill(where, body, filled).strip() + "\n")


_LINE_BREAKS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]+")


def _fill(where: str, template: str, values: dict[str, str]) -> str:
    try:
        return Template(template).substitute(values)
    except KeyError as exc:
        known = ", ".join(f"${key}" for key in sorted(values))
        raise TemplateError(f"{where}: unknown placeholder ${exc.args[0]} (known: {known})") from None
    except ValueError as exc:
        raise TemplateError(f"{where}: {exc} (write $$ for a dollar sign)") from None
