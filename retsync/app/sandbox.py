"""`retsync sandbox`: the bundled emulators on loopback until stopped, and a config that points at them.

`retsync demo` shows one pass and stops its sandboxes with it; an admin who wants to try `sync`, `decide`,
`push`, `channels` or `report` by hand, or a connector author who wants to watch their channel beside the others,
needs the channels to stay up. Nothing here is the daemon's: the emulators are the connectors' own, the config is
an ordinary file, and every command is then run against it as against a real channel.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from retsync import registry
from retsync.app.demo import write_config


class UnknownConnectors(ValueError):
    """--connectors named something no installed connector is (or one that ships no sandbox)."""


def pick(names: list[str] | None) -> dict[str, Any]:
    """The connectors to serve: those named, else every installed one that ships a sandbox."""
    installed = registry.connectors()
    chosen = names or sorted(installed)
    unknown = [name for name in chosen if name not in installed]
    if unknown:
        raise UnknownConnectors(f"no connector {', '.join(unknown)} is installed (installed: "
                                f"{', '.join(sorted(installed))})")
    return {name: installed[name] for name in chosen}


def run_sandbox(names: list[str] | None, returns: int | None, workdir: Path, *,
                stop: threading.Event | None = None, ready: Callable[[Path], None] | None = None) -> int:
    """Serve until `stop` is set (Ctrl-C on the terminal); `ready` is told the config file once it is written."""
    stop = stop or threading.Event()
    chosen = pick(names)
    workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        channels: dict[str, dict[str, Any]] = {}
        for name, cls in chosen.items():
            emulator = cls.sandbox(seed=1, returns=returns)
            if emulator is None:
                if names:
                    raise UnknownConnectors(f"the {name} connector ships no sandbox")
                continue
            base_url = stack.enter_context(emulator.serve())
            channels[f"{name}_sandbox"] = {**cls.sandbox_channel(base_url), "poll_interval": "1m"}
            print(f"sandbox {name}: {base_url}")
        config_file = workdir / "config.toml"
        write_config(config_file, workdir, channels, written_by="retsync sandbox", database="sandbox.db")
        print(f"\nconfig for these sandboxes: {config_file}\ntry, in another terminal:\n"
              f"  retsync --config {config_file} db upgrade\n"
              f"  retsync --config {config_file} sync\n"
              f"  retsync --config {config_file} returns list\n"
              f"  retsync --config {config_file} run      # the daemon, polling every minute\n"
              "serving until Ctrl-C; the sandboxes keep what you do to them until then", flush=True)
        if ready is not None:
            ready(config_file)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
    return 0
