"""The front-end libraries come from npm's node_modules, copied into static/vendor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perffarm.web import assets

WEB = Path(assets.__file__).parent


def test_copy_puts_every_vendor_file_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = tmp_path / "node_modules"
    for source, _ in assets.FILES:
        (modules / source).parent.mkdir(parents=True, exist_ok=True)
        (modules / source).write_text(f"/* {source} */")
    vendor = tmp_path / "static" / "vendor"
    monkeypatch.setattr(assets, "VENDOR", vendor)
    assert assets.missing() == [name for _, name in assets.FILES]

    copied = assets.copy(modules)

    assert [p.name for p in copied] == [name for _, name in assets.FILES]
    assert (vendor / "uPlot.iife.min.js").read_text() == "/* uplot/dist/uPlot.iife.min.js */"
    assert assets.missing() == []


def test_copy_without_npm_install_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(assets.AssetsMissing, match="run `npm ci`"):
        assets.copy(tmp_path / "node_modules")


def test_the_lock_file_pins_the_chart_library() -> None:
    package = json.loads((WEB / "package.json").read_text())
    lock = json.loads((WEB / "package-lock.json").read_text())
    assert package["dependencies"]["uplot"] == "1.6.32"
    entry = lock["packages"]["node_modules/uplot"]
    assert entry["version"] == "1.6.32"
    assert entry["integrity"].startswith("sha512-")
