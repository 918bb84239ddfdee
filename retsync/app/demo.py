"""`retsync demo`: every registered sandbox on loopback, one sync into a fresh SQLite database.

It runs the daemon's real path (config file, migrations, pull, decision,
push) against the emulators each connector ships, so a new user sees in a
minute what retsync does, and a connector author sees their channel beside
the others.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import text

from retsync import registry
from retsync.config import load_config
from retsync.kit.model import DecisionKind


def _toml_value(value: Any) -> str:
    """A value of a sandbox's channel table as TOML: text, numbers, booleans, lists and inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_value(str(key))} = {_toml_value(item)}" for key, item in value.items()) + " }"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, state_dir: Path, channels: dict[str, dict[str, Any]], *,
                 written_by: str = "retsync demo", database: str = "demo.db") -> None:
    lines = [f"# written by `{written_by}`", "[daemon]", f"state_dir = {_toml_value(str(state_dir))}",
             'log_level = "WARNING"', "", "[database]",
             f"url = {_toml_value('sqlite:///' + str(state_dir / database))}", ""]
    for name, table in channels.items():
        lines.append(f"[channels.{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def run_demo(workdir: str | None = None) -> int:
    from retsync import logs
    from retsync.app.daemon import Runner
    from retsync.app.queries import list_returns
    from retsync.app.tables import RETURN_LIST_COLUMNS, print_table
    from retsync.outbox.decisions import record_decision
    from retsync.store.db import make_engine, upgrade

    logs.configure(level="WARNING")
    with contextlib.ExitStack() as stack:
        folder = Path(workdir) if workdir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="retsync-demo-")))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "demo.db").unlink(missing_ok=True)
        channels: dict[str, dict[str, Any]] = {}
        emulators = {}
        for name, cls in registry.connectors().items():
            emulator = cls.sandbox(seed=1)
            if emulator is None:
                continue
            base_url = stack.enter_context(emulator.serve())
            channels[f"{name}_sandbox"] = {**cls.sandbox_channel(base_url), "poll_interval": "5m"}
            emulators[f"{name}_sandbox"] = emulator
            print(f"sandbox {name}: {base_url}")
        if not channels:
            print("no installed connector ships a sandbox", file=sys.stderr)
            return 1
        config_file = folder / "config.toml"
        write_config(config_file, folder, channels)
        config = load_config(config_file, registry.settings_model_for, registry.names, registry.holds_returns)
        db = make_engine(config.settings.database_url())
        upgrade(db)
        runner = Runner(config, db=db)
        runner.open()
        try:
            outcomes, _ = runner.sync_once()
            for outcome in outcomes:
                state = "ok" if outcome.ok else f"FAILED: {outcome.error}"
                print(f"pulled {outcome.channel}: {outcome.returns_new} returns ({state})")
            with db.connect() as conn:
                candidate = conn.execute(text(
                    "SELECT return_id, channel, external_id FROM v_returns "
                    "WHERE status IN ('requested', 'in_transit', 'received') AND decision IS NULL "
                    "AND handled_by_channel = :no ORDER BY return_id LIMIT 1"), {"no": False}).first()
            if candidate is not None:
                ref = f"{candidate.channel}/{candidate.external_id}"
                record_decision(db, ref, DecisionKind.ACCEPT, note="demo: parcel arrived complete",
                                connector_for=registry.get, source="demo")
                summary = runner.push()
                print(f"decided accept on {ref}; push: {summary.pushed} pushed, {summary.pending} waiting, "
                      f"{summary.failed} failed")
            rows = list_returns(db)
            print()
            print_table(rows[:25], RETURN_LIST_COLUMNS)
            print(f"({len(rows)} returns in {folder / 'demo.db'}; showing the newest {min(25, len(rows))})")
            with db.connect() as conn:
                flags = conn.execute(text("SELECT code, COUNT(*) FROM v_return_flags WHERE resolved_at IS NULL "
                                          "GROUP BY code ORDER BY COUNT(*) DESC, code")).all()
                customers = conn.execute(text("SELECT COUNT(*) FROM v_customers WHERE channels > 1")).scalar_one()
            if flags:
                print("open flags: " + ", ".join(f"{code} {count}" for code, count in flags))
            print(f"customers seen on more than one channel: {customers}")
            if workdir:  # the database stays; the sandboxes stop with the demo
                print(f"\nexplore what was stored: retsync --config {config_file} returns list --flag CODE")
            print("\nnext: `retsync sandbox` keeps these sandboxes running and writes a config for them, so you can "
                  "run sync, decide, push and report by hand (Ctrl-C stops it)")
        finally:
            runner.close()
        return 0 if all(o.ok for o in outcomes) else 1
