"""`perffarm check`, the CI gate, on stored runs: exit codes, reports, usage errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from perffarm.commands import main
from perffarm.model import RunDocument


def test_check_fails_on_a_ten_percent_regression_and_names_it(
    runs: dict[str, RunDocument],
    store_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary, junit = tmp_path / "summary.md", tmp_path / "junit.xml"
    code = main(
        [
            "check",
            "--store",
            str(store_path),
            "--against",
            str(runs["baseline"].id)[:8],
            "--output",
            str(summary),
            "--junit",
            str(junit),
        ]
    )  # no --run: the latest stored run is the slower one
    assert code == 1
    assert "parse" in capsys.readouterr().out
    markdown = summary.read_text()
    title = markdown.splitlines()[0]
    assert "1 slower" in title and "parse" in title
    assert markdown.index("### Slower") < markdown.index("render")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "3" and suite.get("failures") == "1"
    failed = [case.get("name") for case in suite if case.find("failure") is not None]
    assert failed == ["parse[size=1000] time"]


def test_check_passes_when_runs_differ_only_by_noise(
    runs: dict[str, RunDocument], store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "check",
            "--store",
            str(store_path),
            "--against",
            str(runs["baseline"].id),
            "--run",
            str(runs["noise"].id),
            "--format",
            "markdown",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("## ✅ perffarm: no regression beyond 5%")


def test_check_json_and_a_looser_limit(
    runs: dict[str, RunDocument], store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["check", "--store", str(store_path), "--against", str(runs["baseline"].id)]
    assert main([*args, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["regressions"] == 1 and data["passed"] is False
    verdicts = {c["benchmark"]: c["verdict"] for c in data["comparisons"]}
    assert verdicts == {
        "parse": "slower",
        "render": "no significant change",
        "serve": "no significant change",
    }
    # A 10% slowdown is within a 15% limit.
    assert main([*args, "--max-regression", "15%", "--format", "json"]) == 0


def test_check_usage_errors_exit_2(
    runs: dict[str, RunDocument], store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--store", str(store_path), "--against", "ffffffff"]) == 2
    assert "no stored run" in capsys.readouterr().err
    assert (
        main(
            [
                "check",
                "--store",
                str(store_path),
                "--against",
                str(runs["baseline"].id),
                "--format",
                "pdf",
            ]
        )
        == 2
    )
    assert main(["check", "--store", str(store_path)]) == 2  # --against is required
