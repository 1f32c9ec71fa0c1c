"""kgaug's per-image modules (both passes) compiled with mypyc: the same code and the same output bytes, less CPU.

`python -m kgaug.native build` (`make native`, a step of `make demo`/`test`/`bench`) compiles `MODULES` with mypyc (mypy's
compiler, the `native` extra) into `kgaug/_native/`, and writes a stamp holding each source's sha256
last. On import, `kgaug` puts that folder in front of its own `__path__` only while the stamp matches
the sources and this Python, so an edited source is never shadowed by an old build: it warns once and
runs the Python source. `KGAUG_PURE=1` runs the Python sources whatever is built. Without a compiler
or mypy the build says why and kgaug runs as Python (same results, slower). `python -m kgaug.native`
says which modules are compiled.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from kgaug._compiled import MODULES, NATIVE, PACKAGE, PURE_ENV, STAMP, _abi, _digest, stale_reason

GROUP = "kgaug._native"  # mypyc's shared runtime becomes kgaug/_native__mypyc.<abi>.so


def compiled() -> dict[str, bool]:
    """Module -> whether this process runs it compiled."""
    import importlib

    return {m: not str(importlib.import_module("kgaug." + m.replace("/", ".")).__file__).endswith(".py")
            for m in MODULES}


def build(native: Path = NATIVE, quiet: bool = False) -> None:
    """Compile `MODULES` into `native` (built in a temporary folder, moved into place, stamp last)."""
    from mypyc.build import mypycify  # the `native` extra: mypy ships mypyc
    from setuptools import Distribution

    sources = {m: _digest(m) for m in MODULES}
    cwd = os.getcwd()
    tmp = Path(tempfile.mkdtemp(prefix="kgaug-native-"))
    try:
        os.chdir(PACKAGE.parent)  # mypyc names modules by their path: kgaug/negatives.py -> kgaug.negatives
        exts = mypycify([f"kgaug/{m}.py" for m in MODULES] + ["--ignore-missing-imports", "--cache-dir",
                                                               str(tmp / "mypy_cache")],
                        opt_level="3", group_name=GROUP, target_dir=str(tmp / "c"))
        dist = Distribution({"name": "kgaug-native", "ext_modules": exts})
        cmd = dist.get_command_obj("build_ext")
        cmd.build_lib = str(tmp / "lib")
        cmd.build_temp = str(tmp / "obj")
        cmd.parallel = os.cpu_count() or 1
        if quiet:
            dist.verbose = 0
        dist.run_command("build_ext")
        staged = tmp / "native"
        shutil.copytree(tmp / "lib", staged)
        (staged / STAMP).write_text(json.dumps({"abi": _abi(), "sources": sources}, indent=1, sort_keys=True))
        old = native.with_name(native.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if native.exists():
            native.rename(old)
        shutil.move(str(staged), native)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["build"]:
        if "--if-stale" in args and not os.environ.get(PURE_ENV) and stale_reason() is None:
            return 0
        try:
            build(quiet="-q" in args)
        except Exception as e:  # no compiler, no Python headers, no mypy: kgaug still runs, as Python
            print(f"kgaug.native: not compiled ({type(e).__name__}: {e}); kgaug runs its Python sources "
                  f"(same results, slower). Needs `pip install 'kgclip[native]'` and a C compiler.",
                  file=sys.stderr)
            return 0 if "--optional" in args else 1
        print(f"kgaug.native: compiled {', '.join(MODULES)} into {NATIVE}", file=sys.stderr)
        return 0
    if args[:1] == ["clean"]:
        shutil.rmtree(NATIVE, ignore_errors=True)
        return 0
    if args:
        print("usage: python -m kgaug.native [build [--if-stale] [--optional] [-q] | clean]", file=sys.stderr)
        return 2
    why = stale_reason() if (NATIVE / STAMP).exists() else "not built"
    state = compiled()
    for m, c in state.items():
        print(f"kgaug.{m}: {'compiled' if c else 'Python'}")
    if not all(state.values()):
        print(f"(compiled build: {why or 'present'}{'; KGAUG_PURE is set' if os.environ.get(PURE_ENV) else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
