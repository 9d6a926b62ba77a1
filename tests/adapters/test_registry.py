"""Finding adapters: entry points, detection from content, and the errors users see."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.adapters.registry import adapter_names, detect, get_adapter, parse_path, parse_text
from perffarm.plugins import PluginError
from tests.adapters.samples import directory_samples, file_samples, sample_id
from tests.adapters.tools import DATA
from tests.plugins.support import install, write_distribution

BUILT_IN = {
    "generic-json", "generic-csv", "pytest-benchmark", "hyperfine", "google-benchmark",
    "go-bench", "pyperf", "wrk", "jmh", "criterion", "asv", "k6", "grpc-scenario", "bencher",
    "github-action-benchmark", "benchmarkdotnet", "catch2", "benchmarkjs", "libtest", "vitest",
}  # fmt: skip


def test_every_built_in_adapter_is_registered_under_its_own_name() -> None:
    assert set(adapter_names()) >= BUILT_IN
    for name in BUILT_IN:
        adapter = get_adapter(name)
        assert adapter.name == name
        assert adapter.description


@pytest.mark.parametrize("sample", file_samples() + directory_samples(), ids=sample_id)
def test_each_sample_is_detected_as_its_own_format_and_only_that(
    sample: tuple[str, Path],
) -> None:
    format_name, path = sample
    source = InputSource.from_path(path)
    claimed = [name for name in adapter_names() if get_adapter(name).sniff(source)]
    assert claimed == [format_name]


def test_detection_reads_content_not_the_file_name(tmp_path: Path) -> None:
    misleading = tmp_path / "results.csv"
    shutil.copy(DATA / "hyperfine" / "parameters.json", misleading)
    assert detect(InputSource.from_path(misleading)).name == "hyperfine"


def test_unknown_content_names_every_format_tried(tmp_path: Path) -> None:
    unknown = tmp_path / "notes.json"
    unknown.write_text('{"hello": "world"}')
    with pytest.raises(AdapterError) as caught:
        detect(InputSource.from_path(unknown))
    message = str(caught.value)
    assert message.startswith("could not tell the format of notes.json: tried ")
    assert message.endswith("; give --format")
    for name in BUILT_IN:
        assert name in message
    assert "\n" not in message


class _Greedy(Adapter):
    """Claims every input, so that detection meets two adapters for one file."""

    name = "greedy"
    description = "test adapter"

    def sniff(self, source: InputSource) -> bool:
        return True

    def parse(self, source: InputSource) -> Parsed:
        return Parsed()


@pytest.fixture
def greedy_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution registering two adapters: ``greedy`` and one that cannot be imported."""
    entry_points = (
        f"[perffarm.adapters]\ngreedy = {__name__}:_Greedy\nbroken = no_such_module_xyz:Adapter\n"
    )
    install(monkeypatch, write_distribution(tmp_path, "perffarm-greedy", entry_points))


@pytest.mark.usefixtures("greedy_registered")
def test_a_third_party_adapter_is_found_through_entry_points_like_the_built_ins() -> None:
    assert "greedy" in adapter_names()
    assert isinstance(get_adapter("greedy"), _Greedy)


@pytest.mark.usefixtures("greedy_registered")
def test_two_matching_formats_is_an_error_naming_both() -> None:
    with pytest.raises(
        AdapterError,
        match=r"looks like several formats \(.*greedy.*hyperfine|"
        r"looks like several formats \(.*hyperfine.*greedy",
    ):
        detect(InputSource.from_path(DATA / "hyperfine" / "parameters.json"))


@pytest.mark.usefixtures("greedy_registered")
def test_a_broken_plug_in_is_reported_by_name_not_as_a_crash() -> None:
    with pytest.raises(
        AdapterError, match=r"adapter 'broken' from perffarm-greedy 1.0 .* could not be loaded"
    ):
        get_adapter("broken")
    # Parsing by that name gives the registry's one error (a configuration error).
    with pytest.raises(PluginError, match=r"ModuleNotFoundError: No module named"):
        parse_text("broken", "anything")


def test_detection_skips_an_adapter_that_cannot_be_loaded_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry_points = "[perffarm.adapters]\nbroken = no_such_module_xyz:Adapter\n"
    install(monkeypatch, write_distribution(tmp_path, "perffarm-broken", entry_points))
    with pytest.raises(AdapterError, match=r"could not load: broken\); give --format"):
        detect(InputSource.from_text("queuebench\n"))


def test_unknown_format_name_lists_the_known_ones() -> None:
    with pytest.raises(AdapterError, match=r"unknown adapter 'nope' \(installed: .*hyperfine"):
        get_adapter("nope")
    with pytest.raises(PluginError, match=r"unknown adapter 'hyperfin'; did you mean 'hyperfine'"):
        parse_text("hyperfin", "")


def test_parse_text_with_a_name_and_with_auto() -> None:
    text = (DATA / "go-bench" / "two-packages.txt").read_text()
    by_name = parse_text("go-bench", text)
    detected = parse_text("auto", text)
    assert len(by_name.results) == len(detected.results) == 15


def test_parse_text_of_unrecognised_output_says_input() -> None:
    with pytest.raises(AdapterError, match="could not tell the format of input"):
        parse_text("auto", "hello\n")


def test_parse_path_reads_a_directory_and_refuses_a_missing_path(tmp_path: Path) -> None:
    adapter, parsed = parse_path(DATA / "criterion" / "target")
    assert adapter.name == "criterion" and len(parsed.results) == 3
    with pytest.raises(AdapterError, match="does not exist"):
        parse_path(tmp_path / "missing.json")


def test_asv_directory_with_several_commits_asks_for_one_file(tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(DATA / "asv" / "results", results)
    original = results / "mybox" / "4f1c2a9e-virtualenv-py3.11.json"
    shutil.copy(original, results / "mybox" / "0a1b2c3d-virtualenv-py3.11.json")
    with pytest.raises(AdapterError, match="holds 2 asv result files; give one of them"):
        get_adapter("asv").parse(InputSource.from_path(results))
    # One file of the two is one run, with its siblings' definitions.
    parsed = get_adapter("asv").parse(InputSource.from_path(original))
    assert len(parsed.results) == 8
