"""`retsync init`: the first files of a server, written from the templates the package carries.

The wheel holds the commented example config and the systemd unit (`retsync/ops/templates`), so an admin who
installed with pip or pipx needs no clone. Nothing that exists is ever overwritten: a second `init` over an
edited config would throw the admin's work away, so it refuses before writing anything.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

DEFAULT_CONFIG_DIR = Path("/etc/retsync")
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
UNIT_EXECUTABLE = "/usr/local/bin/retsync"
"""The path the packaged unit names; `init --systemd` puts the running retsync's own path there."""


class InitRefused(Exception):
    """A file `init` would write exists already, or a folder cannot be written; nothing was written."""


def template(name: str) -> str:
    """One of the packaged templates (`config.example.toml`, `retsync.service`) as text."""
    return resources.files("retsync.ops").joinpath("templates", name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Written:
    path: Path
    what: str


def installed_executable() -> str | None:
    """The `retsync` console script of this installation (beside the interpreter, as pip and pipx put it)."""
    candidate = Path(sys.executable).parent / "retsync"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("retsync")
    return str(Path(found).absolute()) if found else None


def unit_text(executable: str | None, config_dir: Path = DEFAULT_CONFIG_DIR) -> str:
    """The packaged unit, its `ExecStartPre=`/`ExecStart=` pointing at `executable` when given, and its config and
    credential paths at `config_dir`."""
    text = template("retsync.service")
    if executable and executable != UNIT_EXECUTABLE:
        text = text.replace(f"={UNIT_EXECUTABLE} ", f"={executable} ")
    if config_dir.absolute() != DEFAULT_CONFIG_DIR:
        text = text.replace(f"{DEFAULT_CONFIG_DIR}/", f"{config_dir.absolute()}/")
    return text


_ENV_REFERENCE = re.compile(r'"env:([A-Za-z_][A-Za-z0-9_]*)"')
_CREDENTIAL = re.compile(r'"file:\$\{CREDENTIALS_DIRECTORY\}/([A-Za-z0-9_.-]+)"')


def config_for_systemd(text: str) -> tuple[str, list[str]]:
    """The config with every `env:` secret of its active lines read from a credential file instead, and the names of
    the credentials it reads (`file:${CREDENTIALS_DIRECTORY}/NAME`).

    The unit sets no environment for secrets (an `EnvironmentFile=` would put them in every child's environment),
    so an `env:` reference in a config the unit runs with could never be satisfied.
    """
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.lstrip().startswith("#"):
            line = _ENV_REFERENCE.sub(lambda m: f'"file:${{CREDENTIALS_DIRECTORY}}/{m.group(1).lower()}"', line)
        lines.append(line)
    converted = "".join(lines)
    names = [m.group(1) for line in converted.splitlines() if not line.lstrip().startswith("#")
             for m in _CREDENTIAL.finditer(line)]
    return converted, list(dict.fromkeys(names))


def unit_with_credentials(text: str, names: list[str], config_dir: Path) -> str:
    """The unit with one `LoadCredential=` per credential the config reads, in place of the packaged example line."""
    lines = [f"LoadCredential={name}:{config_dir.absolute()}/credentials/{name}" for name in names]
    kept = [line for line in text.splitlines() if not line.startswith("LoadCredential=")]
    at = next(i for i, line in enumerate(text.splitlines()) if line.startswith("LoadCredential="))
    return "\n".join(kept[:at] + lines + kept[at:]) + "\n"


def write_initial_files(config_dir: Path, *, systemd: bool = False, unit_dir: Path = DEFAULT_UNIT_DIR,
                        executable: str | None = None) -> list[Written]:
    """Write `config.toml` (and with `systemd` the unit and a 0700 `credentials/` folder); refuse if any exists.

    The config is 0644: under the unit's `DynamicUser=` the service's user is not known in advance and must read
    it, which is why it holds references to secrets, never secrets.
    """
    config = config_dir / "config.toml"
    targets = [config]
    unit = unit_dir / "retsync.service"
    if systemd:
        targets.append(unit)
    existing = [str(path) for path in targets if path.exists() or path.is_symlink()]
    if existing:
        raise InitRefused(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; nothing was "
                          f"written (init never overwrites: move the file{'s' if len(existing) > 1 else ''} away "
                          f"to start afresh, or edit {'them' if len(existing) > 1 else 'it'})")
    written: list[Written] = []
    text, credentials_read = template("config.example.toml"), []
    if systemd:
        text, credentials_read = config_for_systemd(text)
    try:
        config_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        _create(config, text, 0o644)
        written.append(Written(config, "the commented configuration: edit it, then `retsync config check`"))
        if systemd:
            credentials = config_dir / "credentials"
            credentials.mkdir(mode=0o700, exist_ok=True)
            os.chmod(credentials, 0o700)
            written.append(Written(credentials, "root-only folder for the secrets the unit loads (LoadCredential=)"))
            unit_dir.mkdir(parents=True, exist_ok=True)
            _create(unit, unit_with_credentials(unit_text(
                executable if executable is not None else installed_executable(), config_dir), credentials_read,
                config_dir), 0o644)
            written.append(Written(unit, "the systemd unit: `systemctl daemon-reload && systemctl enable --now "
                                         "retsync`"))
            for name in credentials_read:
                written.append(Written(credentials / name, f"to create (the unit loads it): `install -m 600 "
                                                           f"/dev/stdin {credentials / name}`, or remove its "
                                                           f"LoadCredential= line with the channel that uses it"))
    except OSError as exc:
        raise InitRefused(f"cannot write {exc.filename or config_dir}: {exc.strerror or exc}"
                          f"{' (run it as root, or give --dir)' if isinstance(exc, PermissionError) else ''}") from None
    return written


def _create(path: Path, text: str, mode: int) -> None:
    """Create the file exclusively (O_EXCL), so a file appearing meanwhile is not overwritten either."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


def home_warning(executable: str | None) -> str | None:
    """The unit's ProtectHome= hides /home and /root: a retsync installed there cannot start under it."""
    if executable and executable.startswith(("/home/", "/root/")):
        return (f"retsync is installed under /{executable.split('/')[1]} ({executable}), which the unit's "
                f"ProtectHome=yes hides from the service: install it under /opt (a venv in /opt/retsync/.venv) or "
                f"/usr/local, then run init again; nothing was written")
    return None
