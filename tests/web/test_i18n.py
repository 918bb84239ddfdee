"""Every page in English and Polish; a language is one file; every [web] key documented."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from retsync.web import i18n

TEMPLATES = Path(i18n.__file__).parent / "templates"


def test_english_and_polish_have_the_same_words() -> None:
    english, polish = (tomllib.loads((i18n.LOCALES / f"{code}.toml").read_text()) for code in ("en", "pl"))
    assert set(english) == set(polish), set(english) ^ set(polish)
    assert all(value.strip() for value in polish.values())


def test_every_word_the_templates_ask_for_is_in_english() -> None:
    english = tomllib.loads((i18n.LOCALES / "en.toml").read_text())
    asked = set()
    for template in TEMPLATES.glob("*.html"):
        asked |= set(re.findall(r't\("([a-z_]+\.[a-z_]+)"', template.read_text()))
    assert asked and asked <= set(english), asked - set(english)


def test_a_new_language_is_one_file_and_falls_back_to_english(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    for code in ("en", "pl"):
        (tmp_path / f"{code}.toml").write_text((i18n.LOCALES / f"{code}.toml").read_text())
    (tmp_path / "nl.toml").write_text('"nav.returns" = "Retouren"\n')
    monkeypatch.setattr(i18n, "LOCALES", tmp_path)
    i18n.catalogs.cache_clear()
    try:
        assert i18n.languages() == ["en", "nl", "pl"]
        t = i18n.Translator("nl")
        assert (t("nav.returns"), t("nav.flags")) == ("Retouren", "Flags")
        assert i18n.Translator("xx").language == "en"
    finally:
        monkeypatch.undo()
        i18n.catalogs.cache_clear()


def test_every_web_key_is_documented_in_the_example_config() -> None:
    from retsync.web.settings import WebSettings

    example = (Path(__file__).resolve().parents[2] / "config.example.toml").read_text()
    block = example[example.index("# [web]"):]
    documented = set(re.findall(r"^#\s*([a-z_]+)\s*=", block, flags=re.M))
    assert set(WebSettings.model_fields) <= documented, set(WebSettings.model_fields) - documented
