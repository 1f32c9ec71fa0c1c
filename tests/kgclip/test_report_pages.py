"""`kgaug build` and `train run` each leave a report.html: one self-contained page, checked in a real
headless browser (rendered, not blank, every inline image decodes, nothing on the console)."""

from __future__ import annotations

from pathlib import Path

from tests.browser import body_data, not_blank, render
from tests.kgaug.helpers import run_build


def test_kgaug_build_report_page_in_a_browser(coco_mini_dir: Path, spacy_model: str, wordnet_ready, tmp_path: Path):
    out = tmp_path / "coco"
    code, log = run_build("--source", "coco", "--captions", str(coco_mini_dir / "captions_val2017_subset.json"),
                          "--images", str(coco_mini_dir / "images"), "--out", str(out), "--limit", "20",
                          "--spacy-model", spacy_model)
    assert code == 0, log
    page = out / "report.html"
    text = page.read_text()
    assert "Hard negatives by type" in text and "rows drawn at random" in text and '<b style="color:' in text
    assert page.stat().st_size < 400_000  # photos as thumbnails, not the originals
    dom, shot, errors = render(page, tmp_path)
    seen = body_data(dom)
    assert seen["images"] == 12 and seen["broken"] == 0, seen  # 12 sample photos, each decoded
    assert not errors, errors
    ink, colours = not_blank(shot)
    assert ink > 0.05 and colours > 200, (ink, colours)
