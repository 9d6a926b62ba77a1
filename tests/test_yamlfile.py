"""The one YAML loader: lines kept, one message form for every reader of a suite file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import perffarm.yamlfile
from perffarm.agent.config import load_suite
from perffarm.analysis.config import AnalysisConfigError, load_analysis
from perffarm.console import UsageError
from perffarm.yamlfile import YamlFileError, dotted, line_of, load_yaml, located, plain

DOCUMENT = """\
project: demo
measurements:
  - name: first
    type: command
  - name: second
    type: pgbench
    clients:
      - 1
      - 4
analysis:
  overrides:
    "x-*": {ignore: true}
"""


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "suite.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_lines_of_keys_and_list_items(tmp_path: Path) -> None:
    data = load_yaml(_write(tmp_path, DOCUMENT))
    assert line_of(data, ("project",)) == 1
    assert line_of(data, ("measurements",)) == 2
    assert line_of(data, ("measurements", 1)) == 5
    assert line_of(data, ("measurements", 1, "type")) == 6
    assert line_of(data, ("measurements", 1, "clients", 1)) == 9
    assert line_of(data, ("analysis", "overrides", "x-*", "ignore")) == 12
    # The deepest part that exists: a missing key or index stops the walk.
    assert line_of(data, ("measurements", 1, "scale")) == 5
    assert line_of(data, ("measurements", 7, "name")) == 2
    assert line_of(data, ("nothing",)) is None
    assert line_of({"plain": "dict"}, ("plain",)) is None


def test_dotted_and_located(tmp_path: Path) -> None:
    path = _write(tmp_path, DOCUMENT)
    data = load_yaml(path)
    assert dotted(("measurements", 1, "clients", 0)) == "measurements[1].clients[0]"
    assert dotted(()) == "(top level)"
    assert located(path, data, ("measurements", 1, "type"), "bad") == (
        f"{path}:6: measurements[1].type: bad"
    )
    assert located(path, data, ("missing",), "required") == f"{path}:1: missing: required"


def test_plain_gives_builtin_containers(tmp_path: Path) -> None:
    data = plain(load_yaml(_write(tmp_path, DOCUMENT)))
    assert type(data) is dict and type(data["measurements"]) is list
    assert data["measurements"][1] == {"name": "second", "type": "pgbench", "clients": [1, 4]}


def test_errors_name_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "project: demo\nmeasurements: [\n  - a\n")
    with pytest.raises(YamlFileError) as caught:
        load_yaml(path)
    assert str(caught.value).startswith(f"{path}:3: invalid YAML: ")
    assert caught.value.line == 3 and caught.value.path == path

    unreadable = _write(tmp_path, b"project: \xff\xfe\n")
    with pytest.raises(YamlFileError, match=r"suite.yaml: cannot read the file: .*utf-8"):
        load_yaml(unreadable)
    with pytest.raises(YamlFileError, match=r"cannot read the file"):
        load_yaml(tmp_path / "absent.yaml")


def test_a_character_yaml_does_not_allow_is_one_line_naming_its_line(tmp_path: Path) -> None:
    """Found by tests/commands/test_hostile_files.py: ruamel's reader error spans two lines
    ('in "<unicode string>", position 14'), which became a two-line error."""
    path = _write(tmp_path, "project: demo\ntag: a\x1fb\n")
    with pytest.raises(YamlFileError) as caught:
        load_yaml(path)
    assert str(caught.value) == (
        f"{path}:2: invalid YAML: unacceptable character #x001f: special characters are not allowed"
    )


def test_the_suite_and_the_gate_say_the_same_about_a_broken_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "project: demo\nanalysis: {max_regression: [5%\n")
    with pytest.raises(UsageError) as suite_error:
        load_suite(path)
    with pytest.raises(AnalysisConfigError) as gate_error:
        load_analysis(path)
    assert str(suite_error.value) == str(gate_error.value)
    assert str(gate_error.value).startswith(f"{path}:3: invalid YAML: ")
    assert "\n" not in str(gate_error.value)


def test_the_module_is_a_leaf() -> None:
    tree = ast.parse(Path(perffarm.yamlfile.__file__).read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.startswith("perffarm")]
