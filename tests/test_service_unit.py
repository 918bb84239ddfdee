"""The shipped systemd unit `retsync.service`: sandboxed, and still able to run the daemon.

`systemd-analyze security --offline=true` rates a unit file without installing
it; its exposure scale runs from 0.0 (locked down) to 10.0 (unprotected). The
unit must stay at 2.0 or lower. `--threshold=` takes that limit in tenths
(20 = 2.0) and makes the command exit non-zero when the unit rates above it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# The packaged unit itself (the repo root holds only a link to it, which systemd-analyze will not read).
UNIT = Path(__file__).resolve().parents[1] / "retsync" / "ops" / "templates" / "retsync.service"
MAX_EXPOSURE = 2.0
# --offline= and --threshold= of `systemd-analyze security` appeared in systemd 250.
MIN_SYSTEMD = 250

_TRUE = {"1", "yes", "true", "on"}


def _unavailable(reason: str) -> None:
    """Skip on a developer machine without systemd; CI must have it, so fail there."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this check may not be skipped (install systemd)")
    pytest.skip(reason)


def _systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        _unavailable("systemd-analyze is not on PATH, cannot rate retsync.service")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    match = re.match(r"systemd (\d+)", version.stdout)
    if match is None or int(match.group(1)) < MIN_SYSTEMD:
        _unavailable(
            f"systemd-analyze is too old for `security --offline` (need systemd {MIN_SYSTEMD}+, "
            f"found {version.stdout.splitlines()[0] if version.stdout else 'unknown'})"
        )
    return exe


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every assignment in file order (systemd allows repeated keys).

    Handles comments (# and ;), blank lines and backslash line continuations,
    which is all the syntax a unit file uses.
    """
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}:{number}: not a `Key=value` line inside a section: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    assert UNIT.is_file(), f"{UNIT} is missing"
    return parse_unit(UNIT)


def _last(section: dict[str, list[str]], key: str) -> str | None:
    """The effective value of a single-valued setting: systemd uses the last assignment."""
    values = section.get(key)
    return values[-1] if values else None


def _words(section: dict[str, list[str]], key: str) -> list[str]:
    """A list setting: assignments add up, an empty assignment resets the list."""
    words: list[str] = []
    for value in section.get(key, []):
        words = [] if not value else words + value.split()
    return words


def test_security_exposure_is_at_most_2() -> None:
    exe = _systemd_analyze()
    threshold = round(MAX_EXPOSURE * 10)
    result = subprocess.run(
        [exe, "security", "--offline=true", f"--threshold={threshold}", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=120,
        env={**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "cat", "SYSTEMD_LOG_COLOR": "0"},
    )
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert match, f"no 'Overall exposure level' line (exit {result.returncode}):\n{output}"
    exposure = float(match.group(1))
    failing = "\n".join(line for line in result.stdout.splitlines() if line.startswith("✗"))
    assert exposure <= MAX_EXPOSURE, f"retsync.service rates {exposure} (limit {MAX_EXPOSURE}); open points:\n{failing}"
    assert result.returncode == 0, (
        f"systemd-analyze exited {result.returncode} with --threshold={threshold} "
        f"although the unit rates {exposure}:\n{output}"
    )


def test_unit_has_the_required_lines(unit: dict[str, dict[str, list[str]]]) -> None:
    service = unit.get("Service")
    assert service is not None, "no [Service] section"

    dynamic = (_last(service, "DynamicUser") or "no").lower() in _TRUE
    user = _last(service, "User")
    assert dynamic or (user and user not in {"root", "0"}), "needs DynamicUser=yes or a dedicated User="

    assert "retsync" in _words(service, "StateDirectory"), "StateDirectory=retsync missing"
    assert "retsync" in _words(service, "ConfigurationDirectory"), "ConfigurationDirectory=retsync missing"

    credentials = service.get("LoadCredential", [])
    assert credentials, "no LoadCredential= line"
    for credential in credentials:
        name, sep, source = credential.partition(":")
        assert name and sep and source, f"LoadCredential={credential} is not `name:/path`"

    assert _last(service, "ProtectSystem") == "strict"
    assert (_last(service, "NoNewPrivileges") or "").lower() in _TRUE, "NoNewPrivileges=yes missing"

    pre = service.get("ExecStartPre", [])
    assert any("db upgrade" in command for command in pre), f"no ExecStartPre= running `retsync db upgrade`: {pre}"
    start = service.get("ExecStart", [])
    assert len(start) == 1 and "retsync run" in start[0], f"ExecStart= must run `retsync run`: {start}"
    for command in pre + start:
        # `+` / `!` would run the command outside the sandbox, with full privileges.
        assert not command.lstrip("-@:").startswith(("+", "!")), f"privileged command prefix in {command!r}"


def test_unit_runs_the_daemon_as_documented(unit: dict[str, dict[str, list[str]]]) -> None:
    service, section_unit, install = unit["Service"], unit.get("Unit", {}), unit.get("Install", {})
    assert "RETSYNC_CONFIG=/etc/retsync/config.toml" in _words(service, "Environment")
    assert _last(service, "Type") == "notify" and _last(service, "NotifyAccess") == "main"
    assert _last(service, "WatchdogSec"), "retsync beats the watchdog; systemd restarts a daemon that stops"
    assert _last(service, "Restart") == "on-failure"
    assert _last(service, "RestartSec")
    assert _last(service, "KillSignal") in {"SIGTERM", "TERM", "15"}
    # The daemon stops within 10 s of SIGTERM; SIGKILL must not come first.
    assert _last(service, "TimeoutStopSec") == "15"
    assert "network-online.target" in _words(section_unit, "Wants")
    assert "network-online.target" in _words(section_unit, "After")
    assert "multi-user.target" in _words(install, "WantedBy")


_SIZE = re.compile(r"^(\d+)([KMGT]?)$")


def _bytes(value: str) -> int:
    """`512M` -> bytes, as systemd reads memory sizes (base 1024)."""
    match = _SIZE.match(value)
    assert match, f"{value!r} is not a size like 512M"
    return int(match.group(1)) * 1024 ** " KMGT".index(match.group(2) or " ")


def test_memory_and_tasks_are_bounded_with_headroom(unit: dict[str, dict[str, list[str]]]) -> None:
    """The benchmarks' peak is about 150 MB per daemon (README, Performance); a hostile answer is capped at 16 MiB
    decoded (about 100 MB parsed). The limit must end a runaway, and never a daemon doing its ordinary work."""
    service = unit["Service"]
    peak, page = 150 * 1024**2, 100 * 1024**2
    memory_max = _last(service, "MemoryMax")
    assert memory_max, "no MemoryMax=: a runaway could take the whole machine"
    assert peak + page <= _bytes(memory_max) <= 1024**3, f"MemoryMax={memory_max}"
    memory_high = _last(service, "MemoryHigh")
    if memory_high:
        assert peak * 2 <= _bytes(memory_high) < _bytes(memory_max), f"MemoryHigh={memory_high}"
    tasks = _last(service, "TasksMax")
    assert tasks and tasks.isdigit(), "no TasksMax= as a number"
    assert 16 <= int(tasks) <= 512, f"TasksMax={tasks}: 8 channel workers, the scheduler and helpers need ~12"


def test_hardening_keeps_the_network_the_daemon_needs(unit: dict[str, dict[str, list[str]]]) -> None:
    service = unit["Service"]
    assert (_last(service, "PrivateNetwork") or "no").lower() not in _TRUE, "the daemon needs the host network"
    families = _words(service, "RestrictAddressFamilies")
    if families:
        assert families[0] != "none" and not families[0].startswith("~"), f"deny-list of families: {families}"
        for family in ("AF_INET", "AF_INET6", "AF_UNIX"):
            assert family in families, f"{family} must stay allowed: {families}"
    allowed = [v for v in service.get("SystemCallFilter", []) if v and not v.startswith("~")]
    denied = " ".join(v for v in service.get("SystemCallFilter", []) if v.startswith("~"))
    if allowed or denied:
        assert any("@system-service" in v.split() for v in allowed), "SystemCallFilter= must allow @system-service"
        assert "@system-service" not in denied.split(), "@system-service must not be denied"
    assert not service.get("IPAddressAllow") and "any" not in _words(service, "IPAddressDeny"), (
        "outbound connections to the marketplace APIs must not be blocked"
    )


def test_the_example_config_reads_exactly_the_credentials_the_unit_loads(unit: dict[str, dict[str, list[str]]]) -> None:
    """Copied as they are, the two start: every secret of the example's active lines is a credential file the unit
    loads (LoadCredential=), the unit loads none the config does not read, and no active line waits for an
    environment variable the unit never sets."""
    example = (UNIT.parent / "config.example.toml").read_text(encoding="utf-8")
    active = [line for line in example.splitlines() if not line.lstrip().startswith("#")]
    read = {m.group(1) for line in active for m in re.finditer(r'"file:\$\{CREDENTIALS_DIRECTORY\}/([^"]+)"', line)}
    loaded = {value.split(":", 1)[0] for value in unit["Service"].get("LoadCredential", [])}
    assert read and read == loaded, f"config reads {sorted(read)}, unit loads {sorted(loaded)}"
    assert not [line for line in active if '"env:' in line], "an env: secret the unit never sets"
