"""Bad input: broken or unusual images, missing files, wrong input folders, too few samples for k,
and write errors mid-run. Each is either handled (re-encoded), skipped and counted with a reason,
or a clear error — never a crash on one record and never a half-written shard under a final name."""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from clusterbuild import contract, images
from clusterbuild.cli import app
from clusterbuild.validate import validate_folder
from kgclip import atomic


def huge_png(path: Path, side: int = 20000) -> Path:
    """A 20000x20000 1-bit PNG of one colour: a few KiB on disk, 400 Mpx when decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
           + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    path.write_bytes(png)
    return path


def make_bad_images(d: Path, kg) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    ok = kg.draw_image(d / "ok.jpg", 1, size=120)
    out = {"ok": ok}
    data = ok.read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 2])
    out["truncated"] = d / "truncated.jpg"
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(300))
    out["corrupt"] = d / "corrupt.jpg"
    rgb = Image.open(ok).convert("RGB")
    rgb.convert("CMYK").save(d / "cmyk.jpg", quality=90)
    out["cmyk"] = d / "cmyk.jpg"
    rgb.convert("L").save(d / "gray.jpg", quality=90)
    out["gray"] = d / "gray.jpg"
    pal = Image.new("P", (32, 16), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (16, 0, 32, 16))
    pal.save(d / "palette_alpha.png", transparency=0)  # left half transparent red, right half blue
    out["palette_alpha"] = d / "palette_alpha.png"
    Image.frombytes("I;16", (64, 48), bytes(range(256)) * 24).save(d / "deep16.png")
    out["deep16"] = d / "deep16.png"
    rgb.resize((300, 100)).save(d / "wide.png")
    out["wide"] = d / "wide.png"
    out["bomb"] = huge_png(d / "bomb.png")
    (d / "empty.jpg").write_bytes(b"")
    out["empty"] = d / "empty.jpg"
    out["missing"] = d / "not_there.jpg"
    return out


def test_bad_images_are_reencoded_or_skipped_and_counted(tmp_path: Path, kg):
    imgs = make_bad_images(tmp_path / "imgs", kg)
    rows = kg.synthetic_rows(tmp_path / "good", 4)
    rows += [kg.kg_row(f"bad_{name}", str(p), f"picture {name}") for name, p in imgs.items()]
    rows.append(kg.kg_row("bad_nocaption", str(kg.draw_image(tmp_path / "imgs" / "nc.jpg", 5)), None,
                          pseudo_captions=[]))
    inp = kg.write_kgaug(tmp_path / "kg", rows)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["shard", str(inp), "--out", str(out), "--model", "kgclip-tiny-64",
                                 "--clusters", "2", "--max-side", "256", "--quiet"])
    assert r.exit_code == 0, r.output
    assert validate_folder(out) == []
    info = json.loads((out / contract.INFO_FILE).read_text())
    assert info["counts"]["skipped_by_reason"] == {
        "decompression_bomb": 1, "empty_image": 1, "missing_image": 1, "undecodable_image": 2, "no_caption": 1}
    why = {s["key"]: s["reason"] for s in info["skipped_rows"]}
    assert why["bad_truncated"] == why["bad_corrupt"] == "undecodable_image"
    assert why["bad_bomb"] == "decompression_bomb" and why["bad_missing"] == "missing_image"
    assert info["counts"]["reencoded"] == {"mode_CMYK": 1, "mode_L": 1, "mode_P": 1, "mode_I;16": 1,
                                           "too_large": 1}
    samples = {s.key: s for s in contract.iter_samples([str(p) for p in contract.list_shards(out)])}
    assert len(samples) == 4 + 6
    for key, ext in (("bad_cmyk", "jpg"), ("bad_gray", "jpg"), ("bad_palette_alpha", "png"),
                     ("bad_deep16", "png"), ("bad_wide", "png")):
        s = samples[key]
        im = Image.open(io.BytesIO(s.image))
        assert s.image_ext == ext and im.mode == "RGB", key
        assert (s.meta["width"], s.meta["height"]) == im.size
    assert samples["bad_wide"].meta["width"] == 256  # downscaled to --max-side
    assert samples["bad_ok"].image == imgs["ok"].read_bytes()  # fine images keep their bytes
    deep = Image.open(io.BytesIO(samples["bad_deep16"].image))
    assert max(deep.getdata())[0] > 0  # 16-bit values scaled into 8 bits, not clipped to black/white


def test_prepare_unit_cases(tmp_path: Path, kg):
    imgs = make_bad_images(tmp_path, kg)
    with pytest.raises(images.BadImage) as e:
        images.prepare(imgs["bomb"])
    assert e.value.reason == "decompression_bomb"
    p = images.prepare(imgs["palette_alpha"])
    im = Image.open(io.BytesIO(p.data))
    assert p.reencoded and p.ext == "png" and im.mode == "RGB"
    assert im.getpixel((0, 0)) == (255, 255, 255) and im.getpixel((31, 0)) == (0, 0, 255)
    ok = images.prepare(imgs["ok"])
    assert not ok.reencoded and ok.data == imgs["ok"].read_bytes() and ok.ext == "jpg"
    with pytest.raises(images.BadImage, match="no_image"):
        images.prepare(None)


def test_input_not_a_kgaug_output(tmp_path: Path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.txt").write_text("hi")
    for folder in (tmp_path / "plain", tmp_path / "absent"):
        r = CliRunner().invoke(app, ["shard", str(folder), "--out", str(tmp_path / "o"), "--model", "kgclip-tiny-64"])
        text = " ".join(r.output.split())  # rich wraps long lines
        assert r.exit_code == 1 and "kgaug build" in text and str(folder.name) in text, r.output
        assert "Traceback" not in r.output


def test_fewer_samples_than_clusters(tmp_path: Path, kg):
    inp = kg.write_kgaug(tmp_path / "kg", kg.synthetic_rows(tmp_path / "imgs", 4))
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["shard", str(inp), "--out", str(out), "--model", "kgclip-tiny-64",
                                 "--clusters", "10", "--cluster-on", "image", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "asked for 10 clusters but only 4 samples: using k=4" in " ".join(r.output.split())
    info = json.loads((out / contract.INFO_FILE).read_text())
    assert info["clusters"]["k"] == 4 and info["clusters"]["k_requested"] == 10 and "k=4" in info["clusters"]["k_note"]
    assert validate_folder(out) == []


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EACCES])
def test_write_error_mid_run_leaves_no_partial_shard(tmp_path: Path, kg, monkeypatch, err):
    inp = kg.write_kgaug(tmp_path / "kg", kg.synthetic_rows(tmp_path / "imgs", 9))
    out = tmp_path / "out"
    args = ["shard", str(inp), "--out", str(out), "--model", "kgclip-tiny-64", "--clusters", "2",
            "--samples-per-shard", "3", "--quiet"]
    real_fsync = atomic.os.fsync
    calls = {"n": 0}

    def failing_fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
        if ".000001.tar.tmp" in name:
            raise OSError(err, os.strerror(err))
        calls["n"] += 1
        return real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", failing_fsync)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1, r.output
    text = " ".join(r.output.split())
    assert "000001.tar" in text and os.strerror(err) in text and "rerun to resume" in text, text
    assert (out / "000000.tar").is_file() and not (out / "000001.tar").exists()
    assert not list(out.glob(".*.tmp-*")), "temp file left behind"
    assert not (out / contract.SIZES_FILE).exists()
    monkeypatch.setattr(atomic.os, "fsync", real_fsync)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert validate_folder(out) == [] and sum(contract.read_sizes(out).values()) == 9


def test_a_folder_that_is_no_kgaug_output_is_named_in_the_error(tmp_path: Path):
    (tmp_path / "notkg").mkdir()
    r = CliRunner().invoke(app, ["shard", str(tmp_path / "notkg"), "--out", str(tmp_path / "out"), "--quiet"])
    text = " ".join(r.output.split())
    assert r.exit_code == 1 and "is not a kgaug build output" in text
    assert "{folder}" not in text and f"--out {tmp_path / 'notkg'}" in text.replace("\n", "")


def test_a_table_that_cannot_give_a_shard_fails_before_embedding(tmp_path: Path, kg, monkeypatch):
    # `kgaug build --source vg` without --images writes rows without an image path; a wrong --images
    # writes paths that do not exist; kgaug can also leave a table without rows. Each fails at once, the
    # rows grouped by reason, before a model is built.
    from clusterbuild import pipeline

    monkeypatch.setattr(pipeline, "load_model", lambda *a, **k: pytest.fail("embedding started"))
    no_path = kg.write_kgaug(tmp_path / "nopath", [kg.kg_row(f"k{i}", None) for i in range(5)])
    gone = kg.write_kgaug(tmp_path / "gone", [kg.kg_row(f"k{i}", str(tmp_path / "imgs" / f"{i}.jpg"))
                                              for i in range(4)])
    empty = kg.write_kgaug(tmp_path / "empty", [])
    for folder, words in ((no_path, "5 × row without an image path"),
                          (gone, f"4 × image file not found under {tmp_path / 'imgs'}"),
                          (empty, "the table has no rows")):
        r = CliRunner().invoke(app, ["shard", str(folder), "--out", str(tmp_path / "out"), "--model",
                                     "kgclip-tiny-64", "--quiet"])
        assert r.exit_code == 1, r.output
        assert words in " ".join(r.output.split()), r.output
