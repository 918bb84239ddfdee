"""`retsync as-service -- COMMAND…`: a CLI command run as the service runs, beside it.

The unit runs retsync as a dynamic user whose state directory is 0700 and whose credentials exist only inside the
service (`LoadCredential=`). A command run as root would read them but could leave root-owned files in the state
directory (SQLite's -wal and -shm) that the service then cannot write; run as another user it can read nothing.
So the command is started by systemd itself, as a transient service with the unit's identity, state directory,
credentials and environment (`systemd-run --pty --wait`): it sees exactly what the daemon sees, and while the
daemon runs it gets the same dynamic user.

Only the unit file named is read (the packaged one, or /etc/systemd/system/retsync.service when it exists);
settings from drop-ins (`systemctl edit`) that matter here must be in it or given with `--unit`.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path

INSTALLED_UNIT = Path("/etc/systemd/system/retsync.service")
PACKAGED_UNIT = Path(__file__).resolve().parents[1] / "ops" / "templates" / "retsync.service"

CARRIED = ("DynamicUser", "User", "Group", "SupplementaryGroups", "StateDirectory", "StateDirectoryMode",
           "ConfigurationDirectory", "LoadCredential", "LoadCredentialEncrypted", "SetCredential", "Environment",
           "EnvironmentFile", "UMask", "ReadWritePaths", "ReadOnlyPaths", "ProtectSystem", "ProtectHome",
           "PrivateTmp")
"""What the command needs to see the service's world: who it is, its files, its credentials, its environment.
Sandboxing that only limits the daemon (system calls, namespaces) is not carried."""


class UnitProblem(ValueError):
    """The unit file cannot be read, or names no retsync to run."""


def default_unit() -> Path:
    return INSTALLED_UNIT if INSTALLED_UNIT.is_file() else PACKAGED_UNIT


def service_settings(path: Path) -> list[tuple[str, str]]:
    """The [Service] section's `Key=value` lines, in order, continuation lines joined."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UnitProblem(f"cannot read the unit file {path}: {exc.strerror or exc}") from None
    section, pending, found = None, "", []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and "=" in line:
            key, _, value = line.partition("=")
            found.append((key.strip(), value.strip()))
    return found


def systemd_run_command(unit: Path, command: Sequence[str]) -> list[str]:
    """`systemd-run …` that runs `retsync COMMAND` with the unit's identity, files, credentials and environment."""
    settings = service_settings(unit)
    starts = [value for key, value in settings if key == "ExecStart" and value]
    if not starts:
        raise UnitProblem(f"{unit} has no ExecStart= to take retsync's path from")
    executable = shlex.split(starts[-1].lstrip("@-:+!"))[0]
    properties = [f"--property={key}={value}" for key, value in settings if key in CARRIED]
    dynamic = any(key == "DynamicUser" and value.lower() in ("yes", "true", "1", "on") for key, value in settings)
    if dynamic and not any(key == "User" for key, _ in settings):
        # a dynamic user is named after its unit; the transient unit must ask for the same name to be the same
        # user (systemd shares it while the daemon runs) and to own the same state directory
        properties.append(f"--property=User={unit.stem}")
    return ["systemd-run", "--pty", "--wait", "--collect", "--quiet", "--service-type=exec", *properties,
            executable, *command]


def run_as_service(unit: Path, command: Sequence[str], show_only: bool) -> int:
    argv = systemd_run_command(unit, command)
    if show_only:
        print(shlex.join(argv))
        return 0
    if shutil.which("systemd-run") is None:
        raise UnitProblem("systemd-run is not on PATH: this needs a machine where systemd runs the service")
    os.execvp(argv[0], argv)  # the command's exit code becomes ours (systemd-run --wait passes it on)
