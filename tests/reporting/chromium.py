"""Headless Chromium for the HTML report test: the page as a browser lays it out and paints it.

`measure()` loads a copy of the page with a small script appended that writes every chart's and bar's
rendered box into the DOM, then reads it back with `--dump-dom`; `screenshot()` returns the painted pixels
(a minimal PNG reader, 8-bit RGB/RGBA, which is what Chromium writes).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest

WINDOW = (1280, 2200)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--window-size={WINDOW[0]},{WINDOW[1]}")

MEASURE = """<script>
(function () {
  var box = function (e) { var r = e.getBoundingClientRect(); return {width: r.width, height: r.height}; };
  var charts = Array.prototype.map.call(document.querySelectorAll("svg.chart"), function (svg) {
    var bars = Array.prototype.map.call(svg.querySelectorAll("rect.bar"), function (bar) {
      var b = box(bar);
      b.value = Number(bar.getAttribute("data-value"));
      b.category = bar.getAttribute("data-category");
      b.series = bar.getAttribute("data-series");
      return b;
    });
    var b = box(svg); b.id = svg.id; b.bars = bars; return b;
  });
  var pre = document.createElement("pre"); pre.id = "measured"; pre.textContent = JSON.stringify(charts);
  document.body.appendChild(pre);
})();
</script>"""


def binary() -> str:
    """The Chromium to use; outside CI a machine without it skips, in CI (`CI` set) that is a failure."""
    found = shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium") or None
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed, and CI must render the HTML report (.ci/run installs it)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI installs it and never skips")


def _run(page: Path, *args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="retsync-chromium-") as profile:
        done = subprocess.run([binary(), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                              capture_output=True, text=True, timeout=120, cwd=profile)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def measure(page: Path) -> list[dict[str, Any]]:
    probe = page.with_name(page.stem + ".measure.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = _run(probe, "--dump-dom")
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert found, f"the measuring script did not run: {dom[-1000:]}"
    return list(json.loads(html.unescape(found.group(1))))


def screenshot(page: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of the page as painted."""
    target = page.with_suffix(".png")
    _run(page, f"--screenshot={target}")
    return read_png(target.read_bytes())


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, "Chromium writes 8-bit RGB(A), not interlaced"
    step = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * step
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif kind in (1, 3, 4):
            _unfilter(kind, line, previous, step)
        previous = line
        rows.append(bytes(line) if step == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
    return width, height, rows


def _unfilter(kind: int, line: bytearray, previous: bytearray, step: int) -> None:
    """PNG filters 1 (sub), 3 (average) and 4 (Paeth), in place; they depend on the bytes just decoded."""
    for x in range(len(line)):
        left = line[x - step] if x >= step else 0
        if kind == 1:
            line[x] = (line[x] + left) & 0xFF
            continue
        up = previous[x]
        if kind == 3:
            line[x] = (line[x] + ((left + up) >> 1)) & 0xFF
            continue
        corner = previous[x - step] if x >= step else 0
        p = left + up - corner
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
        line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF


def count_colour(rows: list[bytes], rgb: tuple[int, int, int]) -> int:
    """Pixels painted exactly `rgb` (a bar's solid fill; anti-aliased edges do not count)."""
    pixel = bytes(rgb)
    return sum(row.count(pixel) for row in rows)
