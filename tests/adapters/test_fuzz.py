"""Corrupted and truncated inputs: an adapter either reads them or raises AdapterError.

Any other exception would be a crash in `perffarm ingest` (and a half-read input); this
throws broken bytes, truncations and structurally wrong JSON values at every sample's
adapter and at detection.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perffarm.adapters.base import AdapterError, InputSource
from perffarm.adapters.registry import detect, get_adapter
from tests.adapters.samples import file_samples, sample_id

FUZZ_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "", "12", "ns", "ops/s"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def _only_adapter_errors(format_name: str, path: Path, data: bytes) -> None:
    source = InputSource(path=path, data=data)
    try:
        get_adapter(format_name).parse(source)
    except AdapterError as exc:
        assert str(exc), "an AdapterError must say what is wrong"
    try:
        detected = detect(InputSource(path=None, data=data))
    except AdapterError:
        return
    try:
        detected.parse(InputSource(path=None, data=data))
    except AdapterError:
        pass


@st.composite
def _corrupted(draw: st.DrawFn, original: bytes) -> bytes:
    size = len(original)
    kind = draw(st.sampled_from(["truncate", "replace", "delete", "insert", "duplicate"]))
    at = draw(st.integers(min_value=0, max_value=max(size - 1, 0)))
    if kind == "truncate":
        return original[:at]
    length = draw(st.integers(min_value=1, max_value=16))
    if kind == "replace":
        noise = draw(st.binary(min_size=1, max_size=length))
        return original[:at] + noise + original[at + len(noise) :]
    if kind == "delete":
        return original[:at] + original[at + length :]
    if kind == "insert":
        noise = draw(
            st.sampled_from([b"NaN", b"-", b"\x00", b"\xff\xfe", b'"', b"]", b"}", b"\n", b"1e999"])
            | st.binary(min_size=1, max_size=length)
        )
        return original[:at] + noise + original[at:]
    return original[:at] + original[at : at + length] * 3 + original[at + length :]


@pytest.mark.parametrize("sample", file_samples(), ids=sample_id)
@FUZZ_SETTINGS
@given(data=st.data())
def test_corrupted_bytes_give_adapter_errors_only(
    sample: tuple[str, Path], data: st.DataObject
) -> None:
    format_name, path = sample
    broken = data.draw(_corrupted(path.read_bytes()))
    _only_adapter_errors(format_name, path, broken)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value[:4]):
            found.extend(_paths(item, (*prefix, index)))
    return found


def _replace(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    copy = dict(document) if isinstance(document, dict) else list(document)
    copy[head] = _replace(document[head], tuple(rest), value)
    return copy


def _json_samples() -> list[tuple[str, Path]]:
    found = []
    for format_name, path in file_samples():
        try:
            json.loads(path.read_text())
        except ValueError:
            continue
        found.append((format_name, path))
    return found


@pytest.mark.parametrize("sample", _json_samples(), ids=sample_id)
@FUZZ_SETTINGS
@given(data=st.data())
def test_wrong_json_values_give_adapter_errors_only(
    sample: tuple[str, Path], data: st.DataObject
) -> None:
    format_name, path = sample
    document = json.loads(path.read_text())
    where = data.draw(st.sampled_from(_paths(document)))
    replacement = data.draw(JSON_VALUES)
    broken = json.dumps(_replace(document, where, replacement)).encode()
    _only_adapter_errors(format_name, path, broken)
