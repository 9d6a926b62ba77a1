"""The sample inputs under tests/data/adapters, by the format each one is written in.

Each folder is named after the adapter that reads it; its files are single inputs, and the
directories listed in DIRECTORY_SAMPLES are whole-directory inputs (asv, Criterion).
"""

from __future__ import annotations

from pathlib import Path

from tests.adapters.tools import DATA

DIRECTORY_SAMPLES = {"criterion": ["criterion/target"], "asv": ["asv/results"]}
# Files inside directory samples that are inputs on their own too.
NESTED_FILE_SAMPLES = {
    "asv": ["asv/results/mybox/4f1c2a9e-virtualenv-py3.11.json"],
    "criterion": [
        "criterion/target/criterion/fib/20/new/sample.json",
        "criterion/target/criterion/fib/20/new/estimates.json",
    ],
}


def file_samples() -> list[tuple[str, Path]]:
    """(format, path) of every single-file sample."""
    found = []
    for folder in sorted(DATA.iterdir()):
        if folder.is_dir():
            found.extend((folder.name, path) for path in sorted(folder.iterdir()) if path.is_file())
    for format_name, relatives in NESTED_FILE_SAMPLES.items():
        found.extend((format_name, DATA / relative) for relative in relatives)
    return found


def directory_samples() -> list[tuple[str, Path]]:
    return [
        (format_name, DATA / relative)
        for format_name, relatives in DIRECTORY_SAMPLES.items()
        for relative in relatives
    ]


def sample_id(sample: tuple[str, Path]) -> str:
    return str(sample[1].relative_to(DATA))
