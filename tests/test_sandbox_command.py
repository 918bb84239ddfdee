"""`retsync sandbox`: channels that stay up, so every command can be tried by hand against them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from retsync.app.cli import main
from retsync.app.sandbox import run_sandbox


def test_the_sandboxes_serve_until_stopped_and_their_config_syncs(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    stop, ready = threading.Event(), threading.Event()
    written: list[Path] = []

    def serve() -> None:
        run_sandbox(["bol", "woocommerce"], 15, tmp_path, stop=stop,
                    ready=lambda path: (written.append(path), ready.set()))

    server = threading.Thread(target=serve)
    server.start()
    try:
        assert ready.wait(30)
        intro = capsys.readouterr().out
        config = str(written[0])
        assert f"retsync --config {config} sync" in intro and "serving until Ctrl-C" in intro
        assert main(["--config", config, "db", "upgrade"]) == 0
        assert main(["--config", config, "sync"]) == 0
        capsys.readouterr()
        assert main(["--config", config, "returns", "list", "--format", "csv"]) == 0
        rows = capsys.readouterr().out.splitlines()[1:]
        assert {row.split(",")[1] for row in rows} == {"bol_sandbox", "woocommerce_sandbox"}
        assert main(["--config", config, "sync"]) == 0, "still up for a second pass"
    finally:
        stop.set()
        server.join(10)
    assert not server.is_alive()


def test_an_unknown_connector_is_named_with_the_installed_ones(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--connectors", "bol,nosuch", "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no connector nosuch is installed" in err and "woocommerce" in err
