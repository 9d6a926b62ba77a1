"""Suite loading: typos, placeholders, secure.yaml and PERFFARM_* overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from perffarm.agent.config import load_suite, render
from perffarm.commands import main
from perffarm.console import UsageError

SUITE = """\
project: demo
repeat: 3
measurements:
  - name: echo
    type: command
    command: "echo hello"
"""


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_typo_in_a_measurement_key_names_file_line_and_key(tmp_path, capsys, store_path):
    suite = write(tmp_path, SUITE.replace('    command: "echo hello"', '    comand: "echo hello"'))

    code = main(["run", str(suite), "--store", str(store_path)])

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert f"{suite}:6:" in err
    assert "measurements[0].comand" in err
    assert "did you mean 'command'" in err
    assert "Traceback" not in err
    assert not store_path.exists(), "a refused suite must not even create the store"


def test_a_typo_at_the_top_level_and_a_wrong_type(tmp_path):
    with pytest.raises(
        UsageError, match=r"suite.yaml:2: repet: unknown key \(did you mean 'repeat'\?\)"
    ):
        load_suite(write(tmp_path, SUITE.replace("repeat: 3", "repet: 3")))
    with pytest.raises(UsageError, match=r"suite.yaml:2: repeat: .*integer"):
        load_suite(write(tmp_path, SUITE.replace("repeat: 3", "repeat: lots")))


def test_unknown_measurement_type_and_missing_project(tmp_path):
    with pytest.raises(
        UsageError, match=r"suite.yaml:5: measurements\[0\].type: unknown measurement type 'comand'"
    ):
        load_suite(write(tmp_path, SUITE.replace("type: command", "type: comand")))
    with pytest.raises(UsageError, match=r"suite.yaml:1: project: required key is missing"):
        load_suite(write(tmp_path, SUITE.replace("project: demo\n", "")))


def test_invalid_yaml_names_the_line(tmp_path):
    with pytest.raises(UsageError, match=r"suite.yaml:5: invalid YAML: expected ',' or ']'"):
        load_suite(write(tmp_path, SUITE.replace("  - name: echo", "  - name: [echo")))


def test_secure_yaml_fills_placeholders_and_unknown_ones_are_refused(tmp_path):
    write(tmp_path, "api_token: s3cr3t-value\n", "secure.yaml")
    suite = load_suite(
        write(tmp_path, SUITE.replace('"echo hello"', '"echo {{ secure.api_token }}"'))
    )
    assert suite.secret_values() == ["s3cr3t-value"]
    assert suite.renderer()("x {{ secure.api_token }} y") == "x s3cr3t-value y"
    # The suite keeps the placeholder: the secret is only expanded when a command runs.
    assert "s3cr3t" not in str(suite.measurements[0].raw_options)

    with pytest.raises(UsageError) as caught:
        load_suite(write(tmp_path, SUITE.replace('"echo hello"', '"echo {{ secure.api_tokn }}"')))
    message = str(caught.value)
    assert "suite.yaml:6:" in message and "did you mean 'api_token'" in message
    assert "s3cr3t" not in message


def test_environment_overrides_top_level_keys(tmp_path):
    suite = load_suite(
        write(tmp_path, SUITE),
        environ={"PERFFARM_PROJECT": "2024", "PERFFARM_REPEAT": "9", "PERFFARM_STORE": "x"},
    )
    assert suite.config.project == "2024"
    assert suite.config.repeat == 9
    with pytest.raises(UsageError, match=r"^PERFFARM_REPEAT='lots': Input should be"):
        load_suite(write(tmp_path, SUITE), environ={"PERFFARM_REPEAT": "lots"})


def test_render_refuses_unknown_placeholders():
    assert render("{{ vars.a }}-{{vars.b.c}}", {"vars": {"a": 1, "b": {"c": "x"}}}) == "1-x"
    with pytest.raises(UsageError, match="unknown placeholder"):
        render("{{ vars.nope }}", {"vars": {}})
