"""`python -m bench.readme`: write bench/results.json's figures into the README's Performance section.

The figures in the README are the last run's, word for word: this replaces what stands between the two marker
comments, and nothing else, so the prose around them stays as written and the table is never edited by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.__main__ import verdict

HERE = Path(__file__).resolve().parent
START = "<!-- bench:figures:start (written by `python -m bench.readme` from bench/results.json) -->"
END = "<!-- bench:figures:end -->"


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def section(results: dict[str, Any]) -> str:
    """The generated part: when and where it was measured, then one row per figure."""
    machine = results["machine"]
    where = ", ".join(f"{key} {value}" for key, value in machine.items()) if isinstance(machine, dict) else str(machine)
    met = [f for f in results["figures"] if f["met"] is True]
    missed = [f for f in results["figures"] if f["met"] is False]
    times = sorted(results.get("measured_at", {}).values()) or [results["when"]]
    span = times[0] if len(times) == 1 else f"between {times[0]} and {times[-1]}"
    lines = [START, "",
             f"Measured {span} on {where}, each figure beside its floor in the same run "
             f"({len(met)} figures met their target, {len(missed)} did not).", "",
             "| benchmark | run | figure | target | |", "|---|---|---|---|---|"]
    for figure in results["figures"]:
        cells = [figure["benchmark"], figure["run"], figure["figure"], figure["target"], verdict(figure["met"])]
        lines.append("| " + " | ".join(_escape(str(cell)) for cell in cells) + " |")
    return "\n".join([*lines, "", END])


def rewrite(readme: str, results: dict[str, Any]) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"the README has no {START!r} … {END!r} markers to write between")
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return before + section(results) + after


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__)
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    parser.add_argument("--readme", type=Path, default=HERE.parent / "README.md")
    args = parser.parse_args(argv)
    if not args.results.exists():
        raise SystemExit(f"{args.results}: no results yet; run `make bench` (or `python -m bench`) first")
    results = json.loads(args.results.read_text())
    if "figures" not in results:
        raise SystemExit(f"{args.results}: written by an older bench without `figures`; run `make bench` again")
    args.readme.write_text(rewrite(args.readme.read_text(), results))
    print(f"{args.readme}: Performance figures written from {args.results}")


if __name__ == "__main__":
    main()
