"""[notify] mistakes are caught at start-up; the texts exist in both languages and can be replaced one by one."""

from __future__ import annotations

from pathlib import Path
from string import Template

import pytest

from retsync import registry
from retsync.config import ConfigError, load_config
from retsync.notify.send import signature
from retsync.notify.templates import TemplateError, Templates

BUILT_IN = Path(__file__).resolve().parents[2] / "retsync" / "notify" / "templates"
KINDS = ["new_return", "received", "new_flag", "push_failed", "customer_registered", "customer_received",
         "customer_decided", "customer_refunded", "customer_reminder", "record_quarantined"]
FACTS = {"return_id": 5, "channel": "shop", "external_id": "R5", "order": "O5", "status": "received",
         "reason": "wrong_size", "lines": "  1 × Shirt", "registered_on": "2026-03-01", "amount": "49.99 PLN",
         "customer_name": "Anna", "flag_code": "refund_overdue", "flag_detail": "late", "decision": "accepted",
         "attempts": 8, "error": "HTTP 409", "shop": "Example Shop", "record": "return", "times_seen": 2,
         "first_seen_at": "2026-03-01T09:00:00+00:00", "quarantine_id": 3}


def load(tmp_path: Path, notify: str, channel_extra: str = "") -> object:
    path = tmp_path / "config.toml"
    (tmp_path / "key").write_text("ck_" + "k" * 20)
    (tmp_path / "secret").write_text("cs_" + "s" * 20)
    path.write_text(f"""
[notify]
{notify}
[channels.shop]
connector = "woocommerce"
base_url = "http://shop.invalid"
consumer_key = "file:{tmp_path / 'key'}"
consumer_secret = "file:{tmp_path / 'secret'}"
{channel_extra}
""")
    return load_config(path, registry.settings_model_for, registry.names, registry.holds_returns)


@pytest.mark.parametrize("notify, channel_extra, message", [
    ("enabled = true", "", "neither smtp_host nor webhook_url is set"),
    ('smtp_host = "mail.example.com"', "", "mail_from is not"),
    ('webhook_url = "ftp://hooks.example.com"', "", "must be an http:// or https:// URL"),
    ('team_emails = ["a@example.com"]\nwebhook_url = "https://h.example.com"', "", "smtp_host is not"),
    ('enabled = true\nwebhook_url = "https://h.example.com"', "notify_customers = true",
     "channels shop have notify_customers = true, which needs an SMTP server"),
    ('webhook_url = "https://h.example.com"\ncustomer_languages = { market = "pl" }', "",
     "no channel named 'market' is configured"),
    ('customer_language = "de"', "", "no templates in language 'de'"),
    ('smtp_security = "ssl"', "", "[notify] key `smtp_security`"),
    ('team_events = ["new_retrun"]', "", "[notify.team_events] key `0`: Input should be"),
    ('smtp_prot = 25', "", "[notify] key `smtp_prot`: unknown key"),
])
def test_config_mistakes_name_the_key(tmp_path: Path, notify: str, channel_extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, notify, channel_extra)
    assert message in str(caught.value)


def test_a_usable_notify_section_keeps_its_secrets_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "hook-secret-3b9e")
    monkeypatch.setenv("HOOK_URL", "https://hooks.slack.example/services/T0/B0/xoxb-9f2c")
    config = load(tmp_path, 'enabled = true\nwebhook_url = "env:HOOK_URL"\n'
                            'webhook_secret = "env:HOOK_SECRET"\ncustomer_languages = { shop = "pl" }')
    notify = config.settings.notify  # type: ignore[attr-defined]
    assert notify.webhook_secret.get_secret_value() == "hook-secret-3b9e"
    assert notify.webhook_url.get_secret_value().endswith("xoxb-9f2c"), "a chat webhook URL is a credential"
    assert "hook-secret-3b9e" not in notify.model_dump_json()
    assert "xoxb-9f2c" not in notify.model_dump_json() and "xoxb-9f2c" not in repr(notify)
    assert notify.language_of("shop") == "pl" and notify.language_of("other") == "en"


@pytest.mark.parametrize("language", ["en", "pl"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_built_in_template_renders(language: str, kind: str) -> None:
    message = Templates().render(language, kind, FACTS)
    assert message.subject and message.body.strip()
    assert "$" not in message.subject + message.body
    words = Templates().words(language)
    assert {"accept", "reject", "repair", "exchange", "keep", "cancel", "customer_name", "record_return",
            "record_order"} <= set(words)


def test_a_template_in_templates_dir_replaces_only_that_one(tmp_path: Path) -> None:
    (tmp_path / "pl").mkdir()
    (tmp_path / "pl" / "customer_refunded.txt").write_text("Subject: Pieniądze wróciły ($order)\n\n$amount dla $customer_name\n")
    templates = Templates(tmp_path)
    assert templates.render("pl", "customer_refunded", FACTS).subject == "Pieniądze wróciły (O5)"
    assert templates.render("pl", "customer_received", FACTS).subject.startswith("Otrzymaliśmy zwrot")
    (tmp_path / "pl" / "customer_decided.txt").write_text("Subject: x\n\n$decyzja\n")
    with pytest.raises(TemplateError, match=r"customer_decided.txt: unknown placeholder \$decyzja"):
        templates.render("pl", "customer_decided", FACTS)
    (tmp_path / "pl" / "customer_received.txt").write_text("no subject here\n")
    with pytest.raises(TemplateError, match="must start with one `Subject: ...` line"):
        templates.render("pl", "customer_received", FACTS)


def test_placeholders_in_the_built_ins_are_ones_the_events_fill() -> None:
    for path in BUILT_IN.glob("*/*.txt"):
        if path.name == "words.txt":
            continue
        names = {m.group("named") or m.group("braced") for m in Template.pattern.finditer(path.read_text())
                 if m.group("named") or m.group("braced")}
        assert names <= set(FACTS), f"{path}: {names - set(FACTS)}"


def test_webhook_signature_is_hmac_sha256_of_the_body() -> None:
    # the value a receiver computes with: hmac.new(secret, body, sha256).hexdigest()
    assert signature("key", b"The quick brown fox jumps over the lazy dog") == \
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
