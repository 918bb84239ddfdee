"""What every command module shares (the CLI, and the commands of intake, operations and the web console): exit
codes, the config named on the command line, its database, and printing channel text.

Those modules add their commands to the CLI's parser, so they cannot import the CLI (it imports them); this one
imports neither.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy import Engine

from retsync import logs, registry
from retsync.config import Config, config_path, load_config
from retsync.safe_text import for_terminal

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
"""0 all good; 1 something failed (a channel, a decision, a refused command); 2 bad config or command line."""


def read_config(args: argparse.Namespace, configure_logs: bool = True) -> Config:
    """The config `--config` (or $RETSYNC_CONFIG, or /etc/retsync/config.toml) names, with every installed
    connector's settings checked; logging set up at its level unless told not to."""
    config = load_config(config_path(args.config), registry.settings_model_for, registry.names, registry.holds_returns)
    if configure_logs:
        logs.configure(level=config.settings.daemon.log_level, fmt=config.settings.daemon.log_format)
    return config


def database(config: Config, current_schema: bool = False) -> Engine:
    """The config's database; with `current_schema`, refused (SchemaError) unless migrated to this retsync's head."""
    from retsync.store.db import make_engine, require_current_schema

    engine = make_engine(config.settings.database_url())
    if current_schema:
        require_current_schema(engine)
    return engine


def say(text: Any, file: Any = None) -> None:
    """Print one line that carries channel or customer text (reasons, names, error bodies) to the terminal."""
    print(for_terminal(text), file=file or sys.stdout)
