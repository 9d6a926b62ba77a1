"""Copy the front-end libraries installed by npm (``package-lock.json``) into ``static/vendor``.

The libraries come from the npm registry through the lock file, never from the internet at
run time and never committed: ``npm ci`` in this folder, then
``python -m perffarm.web.assets``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).parent
VENDOR = HERE / "static" / "vendor"
# (file under node_modules, name under static/vendor)
FILES = (
    ("uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"),
    ("uplot/dist/uPlot.min.css", "uPlot.min.css"),
)


class AssetsMissing(RuntimeError):
    """The vendor files are not in place; the message says how to put them there."""


def missing() -> list[str]:
    return [name for _, name in FILES if not (VENDOR / name).is_file()]


def copy(node_modules: Path = HERE / "node_modules") -> list[Path]:
    """Copy every vendor file; raises AssetsMissing when npm has not installed them."""
    absent = [source for source, _ in FILES if not (node_modules / source).is_file()]
    if absent:
        raise AssetsMissing(f"{node_modules / absent[0]} is missing: run `npm ci` in {HERE} first")
    VENDOR.mkdir(parents=True, exist_ok=True)
    copied = []
    for source, name in FILES:
        target = VENDOR / name
        shutil.copyfile(node_modules / source, target)
        copied.append(target)
    return copied


def main() -> int:
    try:
        for path in copy():
            print(f"copied {path}")
    except AssetsMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
