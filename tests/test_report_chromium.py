"""report.html renders in headless Chromium (Debian's ``chromium``) and the screenshot is not blank."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from PIL import Image
from unisandbox.report import write_report
from unisandbox.run.config import Component, RunConfig
from unisandbox.run.runner import Runner

CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (Debian: apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    run = tmp_path / "run"
    tasks = tuple(Component(t, {"n": 6, "world": "glyph"}) for t in ("math-1", "mapping-1"))
    Runner(RunConfig(model=Component("glyph-oracle"), tasks=tasks, judge=Component("glyph"),
                     out=run), progress=False).run()
    write_report([run], tmp_path / "rep")
    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    profile.mkdir()
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1280,1600",
         (tmp_path / "rep" / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 1600)
        rgb = image.convert("RGB")
        colours = rgb.getcolors(1 << 24)
        # text, tables, bar colours and sample images: far more than a blank page's one colour
        assert colours is not None and len(colours) > 200
        # the bar chart's colours are on the page (U blue, G-normal orange, G-think green)
        present = {c for _, c in colours}
        assert {(76, 114, 176), (221, 132, 82), (85, 168, 104)} <= present
