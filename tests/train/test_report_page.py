"""`train run` leaves OUT/report.html: the summary, the curves and AHNM's statistics on one page, checked in
a real headless browser."""

from __future__ import annotations

from pathlib import Path

from tests.browser import body_data, not_blank, render
from train import loop


def test_train_run_report_page_in_a_browser(coco_shards: Path, tmp_path: Path):
    s = loop.run({"model": "kgclip-tiny-64", "shards": [str(coco_shards)], "out": str(tmp_path / "run"), "steps": 3, "batch_size": 8,
                  "export": False})
    page = Path(s["report"])
    assert page == tmp_path / "run" / "report.html"
    text = page.read_text()
    assert "last_loss" in text and "AHNM at step 3" in text and text.count("data:image/png;base64") == len(s["plots"])
    dom, shot, errors = render(page, tmp_path)
    seen = body_data(dom)
    assert seen["images"] == len(s["plots"]) == 3 and seen["broken"] == 0, seen
    assert not errors, errors
    ink, colours = not_blank(shot)
    assert ink > 0.03 and colours > 20, (ink, colours)
