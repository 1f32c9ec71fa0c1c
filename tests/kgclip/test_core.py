"""The shared core (`kgclip`): atomic writes, one vocabulary, and the import rule between stages."""

from __future__ import annotations

import ast
import os
import threading
from pathlib import Path

import pytest

from kgclip import atomic, vocab

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("kgaug", "clusterbuild", "train")
# What a stage may take from another: the artifact contract of the stage it reads. train/demo.py and
# train/ablation.py run all three stages (the embedded world, the tables they train on).
ALLOWED = {"clusterbuild": {"kgaug.table"}, "train": {"clusterbuild.contract"}}
ORCHESTRATORS = {"train/demo.py", "train/ablation.py"}


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_no_stage_imports_a_sibling_stages_helpers():
    wrong = []
    for pkg in (*STAGES, "kgclip"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ORCHESTRATORS:
                continue
            for mod in _imports(path):
                top = mod.split(".")[0]
                if top not in STAGES or top == pkg:
                    continue
                # 'from clusterbuild import contract' names both 'clusterbuild' and 'clusterbuild.contract'
                if not any(mod == a or mod.startswith(a + ".") or a.startswith(mod + ".")
                           for a in ALLOWED.get(pkg, ())):
                    wrong.append(f"{rel} imports {mod}")
    assert not wrong, wrong


def test_one_list_of_negative_types():
    from clusterbuild import contract
    from kgaug.negatives import TYPES

    assert TYPES is vocab.NEGATIVE_TYPES and contract.NEGATIVE_TYPES is vocab.NEGATIVE_TYPES
    assert len(set(TYPES)) == 8


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path):
    path = tmp_path / "summary.json"
    atomic.atomic_write_json(path, {"a": 1})

    class Boom(Exception):
        pass

    with pytest.raises(Boom), atomic.atomic_path(path) as tmp:
        tmp.write_text("half")
        raise Boom
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_concurrent_writers_of_one_path_never_share_a_temporary(tmp_path: Path):
    path = tmp_path / "cache.json"
    seen: set[str] = set()
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            seen.add(atomic.temporary_name(path).name)
            for _ in range(20):
                atomic.atomic_write_text(path, f"writer {i}\n" * 1000, fsync=False)
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(seen) == 4
    text = path.read_text()
    assert len(set(text.splitlines())) == 1 and text.count("\n") == 1000  # one writer's whole file
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert os.listdir(tmp_path) == ["cache.json"]
