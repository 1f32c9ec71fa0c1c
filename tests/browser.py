"""Open a self-contained report page in a real headless Chromium: its DOM after load (with what a probe
script found about its images), a screenshot, and what the page logged to its console. Tests skip, with
the reason, where no Chromium is installed (`.ci/run` installs Debian's `chromium`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  document.body.dataset.images = imgs.length;
  document.body.dataset.broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
});
</script>"""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic", "--virtual-time-budget=5000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium installed (apt-get install chromium; .ci/run does)")


def render(page: Path, tmp: Path, width: int = 1200, height: int = 1600) -> tuple[str, Path, list[str]]:
    """(DOM after load, screenshot PNG, console messages) of `page` opened in headless Chromium."""
    exe = chromium()
    probed = tmp / f"probed-{page.name}"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    profile = tmp / "chromium-profile"
    dom = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                          "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = tmp / f"{page.stem}.png"
    r = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    # Chromium logs every console message, whatever its level, as "INFO:CONSOLE:<line>] ...": a report page
    # has no script of its own, so any line is a page error (an uncaught exception, a failed load, a log)
    errors = [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln]
    return dom.stdout, shot, errors


def not_blank(shot: Path) -> tuple[float, int]:
    """(share of pixels that are not white, distinct colours) of a screenshot."""
    from PIL import Image

    with Image.open(shot) as im:
        rgb = im.convert("RGB")
        pixels = list(rgb.getdata())
    return sum(p != (255, 255, 255) for p in pixels) / len(pixels), len(set(pixels))


def body_data(dom: str) -> dict[str, int]:
    m = re.search(r"<body[^>]*>", dom)
    assert m, dom[:500]
    return {k: int(v) for k, v in re.findall(r'data-(\w+)="(\d+)"', m.group(0))}
