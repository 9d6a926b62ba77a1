"""`perffarm compare`: two stored runs, as a table and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perffarm.commands import main
from perffarm.model import RunDocument


def test_compare_prints_a_table_and_json(
    runs: dict[str, RunDocument], store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, slower = str(runs["baseline"].id), str(runs["slower"].id)
    assert main(["compare", base, slower, "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "slower" in out and "parse" in out
    assert main(["compare", base, slower, "--store", str(store_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    parse = next(c for c in data["comparisons"] if c["benchmark"] == "parse")
    assert parse["verdict"] == "slower"
    assert parse["comparison"]["ratio"] == pytest.approx(1.1, abs=0.02)
    assert main(["compare", base, "nope", "--store", str(store_path)]) == 2
