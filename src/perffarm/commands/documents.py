"""`perffarm export`, `import` and `schema`: run documents as files."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from perffarm.commands._shared import JSON_OPTION, STORE_OPTION, open_store
from perffarm.commands.runs import resolve_run

if TYPE_CHECKING:
    from collections.abc import Iterable

    from perffarm.model import RunDocument


def export_command(
    run_id: str = typer.Argument(..., help="A run id or a unique prefix.", show_default=False),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
    store: Path | None = STORE_OPTION,
) -> None:
    """Print a stored run's document (JSON), the format `perffarm import` reads back.

    Example: perffarm export 3f2a9c1e > run.json
    """
    from perffarm.model import RunDocument

    with open_store(store) as local_store:
        run = RunDocument.from_json(local_store.load_json(resolve_run(local_store, run_id)))
    text = run.to_json(indent=2) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def import_command(
    files: list[Path] = typer.Argument(
        ..., help="Run documents (JSON) to import.", show_default=False
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Replace a stored run that has the same id but other content."
    ),
    store: Path | None = STORE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Import run documents (from `perffarm export`) into the local store.

    A run replaced with --replace is pending again for `perffarm upload`: a server that
    stored it before keeps its own copy and answers the upload with a conflict.

    Example: perffarm import run.json
    """
    from perffarm.console import UserError, console, err_console, print_json
    from perffarm.model import RunDocument

    documents = [(path, read_run_document(path)) for path in files]  # all checked first
    outcomes = []
    with open_store(store) as local_store:
        for path, run in documents:
            run_id = str(run.id)
            outcome = "imported"
            uploaded: list[str] = []
            if local_store.contains(run_id):
                stored = RunDocument.from_json(local_store.load_json(run_id))
                if stored.to_json() == run.to_json():
                    outcome = "already stored"
                elif not replace:
                    raise UserError(
                        f"{path}: a different run with the id {run_id} is already stored "
                        "(use --replace to overwrite it)"
                    )
                else:
                    outcome = "replaced"
                    uploaded = local_store.uploaded_to(run_id)
            if outcome != "already stored":
                local_store.save(run)  # a replaced run is pending again (LocalStore.save)
            outcomes.append(
                {"file": str(path), "id": run_id, "outcome": outcome, "uploaded_before": uploaded}
            )
    if as_json:
        print_json(outcomes)
    else:
        for item in outcomes:
            console.print(f"{item['file']}: {item['outcome']} run {item['id']}")
    for item in outcomes:
        for server in item["uploaded_before"]:
            err_console.print(
                f"note: run {item['id']} was uploaded to {server} before; that server keeps "
                "its copy, so the run is pending again and `perffarm upload` will report the "
                "conflict"
            )


def read_run_document(path: Path) -> "RunDocument":
    """Read and check one run document; errors name the file and the JSON path."""
    import json

    from pydantic import ValidationError

    from perffarm.console import UsageError
    from perffarm.model import SCHEMA_VERSION, RunDocument
    from perffarm.model.run import index_problems

    try:
        text = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not JSON: {exc}") from None
    if isinstance(raw, dict) and raw.get("schema") not in (None, SCHEMA_VERSION):
        raise UsageError(
            f"{path}: schema {raw.get('schema')!r} is not {SCHEMA_VERSION!r}: "
            "it was written by another perffarm version (upgrade perffarm to read it)"
        )
    try:
        run = RunDocument.model_validate_json(text)
    except ValidationError as exc:
        error = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise UsageError(f"{path}: ${_json_path(error['loc'])}: {error['msg']}{more}") from None
    problems = index_problems(run)
    if problems:
        field, problem = problems[0]
        where = _json_path(int(part) if part.isdigit() else part for part in field.split("."))
        raise UsageError(f"{path}: ${where}: {problem}: no results server could keep the run")
    return run


def _json_path(location: "Iterable[str | int]") -> str:
    """``.results[0].metric``: a location in a document as a JSON path."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location)
    return text or "(document)"


def schema_command(
    document: str = typer.Argument("run", help="Which document: run.", show_default=True),
) -> None:
    """Print the JSON Schema of perffarm's documents.

    Example: perffarm schema run > perffarm.run.schema.json
    """
    from perffarm.console import UsageError, print_json
    from perffarm.model import run_json_schema

    if document != "run":
        raise UsageError(f"unknown document {document!r}: the schemas are: run")
    print_json(run_json_schema())
