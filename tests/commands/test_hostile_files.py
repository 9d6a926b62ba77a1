"""Property-based: hostile file content at the commands that read files.

- ``perffarm ingest``, for every registered adapter (the registry is enumerated: an adapter
  without a sample here fails ``test_every_adapter_has_a_sample``): the samples of
  tests/data/adapters with hostile text put in place of names, extreme numbers in place
  of figures, and bytes broken;
- ``perffarm import``: run documents with hostile text and extreme numbers, broken bytes,
  numbers no double holds;
- suite files (``perffarm run``, through ``agent/config.py``): the example suite with
  hostile values and broken YAML.

Each ends with exit code 0, the run stored whole (it loads, exports and imports back
equal, compares with itself), or with exit code 2 and one line on stderr, no traceback and
nothing stored. Terminal tables of stored hostile text are the console's own tests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perffarm.adapters.registry import adapter_names
from perffarm.agent.store import LocalStore
from perffarm.analysis.runs import compare_runs
from perffarm.commands import main
from perffarm.model import RunDocument
from perffarm.model.run import index_problems
from tests.adapters.samples import file_samples
from tests.hostile import (
    BAD_NUMBERS,
    EDGE_FLOATS,
    finite_floats,
    fuzz_settings,
    hostile_text,
    name_text,
)
from tests.hostile_documents import run_bodies

EXAMPLE_SUITE = Path(__file__).parents[2] / "examples" / "suite.yaml"


def _stored(store: Path) -> list[str]:
    if not store.exists():
        return []
    with LocalStore(store) as local:
        return [row.id for row in local.list_runs()]


def _one_line_exit_2(code: int, err: str) -> None:
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err


def _round_trips(store: Path, run_id: str, capsys: pytest.CaptureFixture[str]) -> RunDocument:
    """The stored run loads, exports (the JSON `perffarm import` reads) and compares."""
    with LocalStore(store) as local:
        run = local.load(run_id)
    assert main(["export", run_id, "--store", str(store)]) == 0
    exported = capsys.readouterr().out
    assert RunDocument.from_json(exported) == run
    assert index_problems(run) == [], "a results server would refuse the stored run"
    compare_runs(run, run)
    return run


# -- perffarm ingest -------------------------------------------------------------------------

_WORD = re.compile(rb"[A-Za-z_][A-Za-z0-9_./-]{2,}")
_NUMBER = re.compile(rb"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
NUMBER_TEXTS = [repr(value).encode() for value in EDGE_FLOATS] + [
    text.encode() for text in BAD_NUMBERS
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found.extend(_paths(item, (*prefix, index)))
    return found


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    copy = dict(document) if isinstance(document, dict) else list(document)
    copy[head] = _replaced(document[head], tuple(rest), value)
    return copy


@st.composite
def hostile_inputs(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with hostile text for a name, an extreme number for a figure, a JSON
    value replaced, or bytes broken."""
    try:
        document = json.loads(original)
    except ValueError:
        document = None
    kinds = ["name", "number", "bytes"] + (["json"] if document is not None else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "json":
        where = draw(st.sampled_from(_paths(document)))
        value = draw(hostile_text(max_size=600) | finite_floats() | st.integers(-(2**70), 2**70))
        return json.dumps(_replaced(document, where, value)).encode()
    if kind in ("name", "number"):
        matches = list((_WORD if kind == "name" else _NUMBER).finditer(original))
        if matches:
            match = draw(st.sampled_from(matches))
            if kind == "name":
                text = draw(name_text(max_size=draw(st.sampled_from([40, 700]))))
                new = json.dumps(text)[1:-1] if document is not None else text.replace("\n", " ")
                replacement = new.encode()
            else:
                replacement = draw(st.sampled_from(NUMBER_TEXTS))
            return original[: match.start()] + replacement + original[match.end() :]
    at = draw(st.integers(0, len(original)))
    noise = draw(
        st.binary(min_size=1, max_size=12) | st.sampled_from([b"\x00", b"\xff\xfe", b"\n\n"])
    )
    return original[:at] + noise + original[at + draw(st.integers(0, 16)) :]


#: Adapters that read another one's format (and have no samples of their own).
SAME_INPUT_AS = {"grpc-qps": "grpc-scenario"}


def _samples_of(format_name: str) -> list[Path]:
    folder = SAME_INPUT_AS.get(format_name, format_name)
    return [path for name, path in file_samples() if name == folder]


def test_every_adapter_has_a_sample() -> None:
    missing = [name for name in adapter_names() if not _samples_of(name)]
    assert missing == [], f"add samples under tests/data/adapters/ for {missing}"


@pytest.mark.parametrize("format_name", adapter_names())
def test_ingest_stores_a_hostile_input_whole_or_says_why_in_one_line(
    format_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = _samples_of(format_name)
    store = tmp_path / "store.db"
    count = iter(range(10**6))

    @fuzz_settings(0.4)
    @given(data=st.data())
    def ingest(data: st.DataObject) -> None:
        sample = data.draw(st.sampled_from(samples))
        path = tmp_path / f"input-{next(count)}{sample.suffix}"
        path.write_bytes(data.draw(hostile_inputs(sample.read_bytes())))
        chosen = data.draw(st.sampled_from([format_name, "auto"]))
        project = data.draw(st.just("fuzz") | name_text(max_size=60))
        before = _stored(store)
        code = main(
            ["ingest", str(path), "--format", chosen, "--project", project,
             "--store", str(store), "--json"]
        )  # fmt: skip
        out, err = capsys.readouterr()
        if code != 0:
            _one_line_exit_2(code, err)
            assert _stored(store) == before
            return
        summary = json.loads(out)
        run = _round_trips(store, summary["run_id"], capsys)
        assert run.project == project and len(run.results) == len(summary["results"])

    ingest()


# -- perffarm import -------------------------------------------------------------------------


@st.composite
def import_files(draw: st.DrawFn) -> tuple[dict[str, Any] | None, bytes]:
    document, text = draw(run_bodies())
    data = text.encode()
    kind = draw(st.integers(0, 5))
    if kind == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
        return None, data
    if kind == 1:
        return None, draw(
            st.sampled_from([b"", b"[]", b"null", b"\xff\xfe{", b'{"schema": "perffarm.run/9"}'])
        )
    return document, data


def test_import_stores_a_hostile_document_whole_or_says_why_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store.db"
    count = iter(range(10**6))

    @fuzz_settings()
    @given(file=import_files())
    def import_(file: tuple[dict[str, Any] | None, bytes]) -> None:
        document, data = file
        path = tmp_path / f"run-{next(count)}.json"
        path.write_bytes(data)
        before = _stored(store)
        code = main(["import", str(path), "--store", str(store), "--json"])
        out, err = capsys.readouterr()
        if code != 0:
            _one_line_exit_2(code, err)
            assert _stored(store) == before
            return
        (outcome,) = json.loads(out)
        run = _round_trips(store, outcome["id"], capsys)
        if document is not None:
            assert run == RunDocument.model_validate(document)

    import_()


def test_runs_no_results_server_could_keep_are_refused_before_they_are_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the properties above: ingest and import stored runs with a benchmark name
    longer than the server's column, or a time out of range in UTC; every upload was then
    refused and the run stayed pending for good. The rule is the server's own
    (model.run.index_problems)."""
    store = tmp_path / "store.db"
    long_name = tmp_path / "long.json"
    result = {"benchmark": "b" * 501, "metric": "m", "unit": "s", "samples": [1.0]}
    long_name.write_text(json.dumps({"results": [result]}))
    for argv, expected in (
        (["ingest", str(long_name)], "benchmark of 'bbbb"),
        (["ingest", str(long_name), "--dry-run"], "longer than 500 characters"),
        (["ingest", str(long_name), "--benchmark", "b", "--project", "p" * 201], "--project"),
    ):
        code = main([*argv, "--store", str(store)])
        _one_line_exit_2(code, err := capsys.readouterr().err)
        assert expected in err and "no results server could keep the run" in err
    document = json.loads(
        RunDocument(project="p", machine="m", started_at="0001-01-01T00:00:00+01:00").to_json()
    )
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document))
    _one_line_exit_2(
        main(["import", str(old), "--store", str(store)]), err := capsys.readouterr().err
    )
    assert "$.started_at: out of range in UTC" in err
    assert _stored(store) == []


@pytest.mark.parametrize("command", ["import", "ingest"])
def test_a_file_name_with_a_line_break_is_still_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad\nname [bold].json"
    path.write_text("not json")
    code = main([command, str(path), "--store", str(tmp_path / "store.db")])
    _one_line_exit_2(code, capsys.readouterr().err)


# -- suite files -----------------------------------------------------------------------------

YAML_NOISE = [
    "\t", ": ", "- ", "[", "{", "}", "&a ", "*a", "*nope", "!!python/object:os.system ",
    "? ", "|", ">", "%YAML 1.2\n", "---\n", "...\n", "\x00", "\ufeff", "'", '"', "#", "@",
]  # fmt: skip


@st.composite
def hostile_suites(draw: st.DrawFn) -> bytes:
    original = EXAMPLE_SUITE.read_text()
    kind = draw(st.sampled_from(["value", "noise", "structure"]))
    if kind == "value":
        # A value of the suite replaced with hostile text, quoted as YAML or not.
        values = list(re.finditer(r"(?<=: )[^\n#]+", original))
        match = draw(st.sampled_from(values))
        text = draw(hostile_text(max_size=draw(st.sampled_from([40, 700]))))
        quoted = draw(st.booleans())
        new = json.dumps(text) if quoted else text
        return (original[: match.start()] + new + original[match.end() :]).encode(
            "utf-8", "replace"
        )
    if kind == "noise":
        at = draw(st.integers(0, len(original)))
        noise = draw(st.sampled_from(YAML_NOISE) | hostile_text(max_size=10))
        return (original[:at] + noise + original[at:]).encode("utf-8", "replace")
    # A whole structure: nesting, aliases, huge numbers, wrong types in any key.
    key = draw(
        st.sampled_from(["project", "repeat", "warmup", "vars", "measurements", "tag", "unknown"])
    )
    value = draw(
        st.sampled_from(
            [
                "[" * 3000 + "]" * 3000,
                "1" + "0" * 5000,
                ".nan",
                "-.inf",
                "&a [*a]",
                "{a: &x [1, 2], b: [*x, *x, *x], c: [*b]}",
                "[{name: x, type: command}, {name: x, type: command}]",
                "[{name: x, type: nope}]",
                "[{name: x, type: command, command: '{{ vars.missing }}'}]",
                "!!binary aGVsbG8=",
                "2026-01-01",
            ]
        )
    )
    lines = [line for line in original.splitlines() if not line.startswith(f"{key}:")]
    if key in ("vars", "measurements"):
        lines = re.sub(
            rf"^{key}:\n(?:[ #].*\n|\n)*", "", original + "\n", flags=re.MULTILINE
        ).splitlines()
    return ("\n".join(lines) + f"\n{key}: {value}\n").encode()


def test_a_hostile_suite_is_read_or_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from perffarm.agent.config import load_suite
    from perffarm.console import UsageError

    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "bench_example.py").write_text(
        (EXAMPLE_SUITE.parent / "bench_example.py").read_text()
    )
    store = tmp_path / "store.db"
    count = iter(range(10**6))

    @fuzz_settings()
    @given(text=hostile_suites())
    def read(text: bytes) -> None:
        path = folder / f"suite-{next(count)}.yaml"
        path.write_bytes(text)
        try:
            load_suite(path, environ={})
        except UsageError as error:
            assert str(error) and "\n" not in str(error), str(error)
        else:
            return  # a valid suite: running it would run its commands
        # `perffarm run` says the same in one line, exit code 2, before it measures anything.
        code = main(["run", str(path), "--store", str(store), "--no-progress"])
        _one_line_exit_2(code, capsys.readouterr().err)
        assert _stored(store) == []

    read()
