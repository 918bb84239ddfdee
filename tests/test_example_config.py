"""config.example.toml is the configuration reference: it must load, and document every key there is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from retsync import registry
from retsync.config import TEAM_EVENTS, DaemonSettings, DatabaseSettings, NotifySettings, load_config
from retsync.kit.settings import ChannelSettings

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def _documented_keys() -> set[str]:
    return set(re.findall(r"^#?\s*([a-z_]+)\s*=", EXAMPLE.read_text(), flags=re.M))


def test_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bol_client_secret").write_text("x" * 20)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    monkeypatch.setenv("ALLEGRO_CLIENT_SECRET", "y" * 20)
    monkeypatch.setenv("WC_CONSUMER_KEY", "ck_" + "k" * 20)
    monkeypatch.setenv("WC_CONSUMER_SECRET", "cs_" + "s" * 20)
    monkeypatch.setenv("PS_WEBSERVICE_KEY", "P" * 32)
    monkeypatch.setenv("SHOPER_PASSWORD", "z" * 20)
    config = load_config(EXAMPLE, registry.settings_model_for, registry.names, registry.holds_returns)
    assert config.channels, "the example configures at least one channel"
    assert config.settings.notify.team_events == list(TEAM_EVENTS), "the example turns on every team event there is"


BUNDLED = [cls for cls in registry.connectors().values() if cls.__module__.startswith("retsync_connectors.")]
"""The connectors config.example.toml documents; one installed from elsewhere (the template) documents itself."""


@pytest.mark.parametrize("model", [DatabaseSettings, DaemonSettings, NotifySettings, ChannelSettings,
                                   *(cls.settings_model for cls in BUNDLED)],
                         ids=lambda m: m.__name__)
def test_every_key_is_documented(model: type) -> None:
    missing = set(model.model_fields) - _documented_keys()
    assert not missing, f"config.example.toml does not document {sorted(missing)} of {model.__name__}"
