"""The dashboard's JSON (web/encode.py): numpy columns as lists, NaN as null, and values
orjson refuses written all the same."""

from __future__ import annotations

import json

import numpy as np

from perffarm.web.encode import loads, to_json


def test_numpy_columns_and_missing_values() -> None:
    value = {
        "id": np.array([1, 2, 3], dtype=np.int64),
        "y": np.array([1.5, np.nan, 2.0]),
        "n": np.int64(7),
        "commit": None,
    }
    assert json.loads(to_json(value)) == {
        "id": [1, 2, 3],
        "y": [1.5, None, 2.0],
        "n": 7,
        "commit": None,
    }


def test_integers_beyond_64_bits_and_non_string_keys() -> None:
    assert json.loads(to_json({"big": 2**70})) == {"big": 2**70}
    assert json.loads(to_json({1: "one"})) == {"1": "one"}


def test_loads_reads_what_to_json_writes() -> None:
    assert loads('[[1.0, 2.5], {"clients": 4}]') == [[1.0, 2.5], {"clients": 4}]
