"""The console's words in each language: one `locales/<code>.toml` file per language, flat `key = "text"`.

Adding a language is adding a file; a key missing from it falls back to English, so a half-done translation
still shows a whole page.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

LOCALES = Path(__file__).parent / "locales"
FALLBACK = "en"


@cache
def catalogs() -> dict[str, dict[str, str]]:
    found = {}
    for path in sorted(LOCALES.glob("*.toml")):
        with path.open("rb") as handle:
            found[path.stem] = {str(k): str(v) for k, v in tomllib.load(handle).items()}
    return found


def languages() -> list[str]:
    return list(catalogs())


class Translator:
    def __init__(self, language: str) -> None:
        all_ = catalogs()
        self.language = language if language in all_ else FALLBACK
        self._words = all_.get(self.language, {})
        self._fallback = all_.get(FALLBACK, {})

    def __call__(self, key: str, **values: Any) -> str:
        text = self._words.get(key) or self._fallback.get(key) or key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self._words or key in self._fallback
