"""`perffarm data delete|delete-project|keep|keep-project|retention|prune|audit`: the
results server's data over years, as the signed-in user (their own rights, as on the web)."""

from typing import Any

import typer

from perffarm.commands._shared import (
    ACTING_ADMIN_TOKEN_OPTION,
    ACTING_SERVER_OPTION,
    CREDS_DIR_OPTION,
    JSON_OPTION,
    acting_as,
    group,
)

app = group(
    "data",
    "The results server's data over years: delete runs and projects, keep samples, the "
    "retention policy and the audit trail (as the signed-in user).\n\n"
    "Example: perffarm data delete 0b7e2c1a-5a47-4a2b-9d1c-2f3e4d5c6b7a",
)


def _call(
    server: "str | None", creds_dir: "str | None", admin_token: "str | None", make: Any
) -> Any:
    """One typed call (``perffarm.client.calls``) as you, signed in, with your rights (or
    with the admin token); a refusal becomes one line."""
    from perffarm.client import Client
    from perffarm.client.errors import ClientError
    from perffarm.console import UserError

    url, token = acting_as(server, creds_dir, admin_token, needed_for=make.what.capitalize())
    try:
        with Client(url, token=token, retries=1, timeout=120.0) as client:
            return client.call(make)
    except ClientError as exc:
        raise UserError(str(exc)) from None


@app.command("delete")
def data_delete(
    run_ids: list[str] = typer.Argument(..., help="Ids of the runs to delete."),
    server: "str | None" = ACTING_SERVER_OPTION,
    admin_token: "str | None" = ACTING_ADMIN_TOKEN_OPTION,
    creds_dir: "str | None" = CREDS_DIR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete runs on the results server (your machines' runs; admins: any), with the
    alerts they were the evidence of. Recorded in the audit trail.

    Example: perffarm data delete 0b7e2c1a-5a47-4a2b-9d1c-2f3e4d5c6b7a
    """
    from perffarm.client import calls
    from perffarm.console import console, print_json

    answers = [
        _call(server, creds_dir, admin_token, calls.delete_run(run_id)) for run_id in run_ids
    ]
    if as_json:
        print_json([answer.model_dump(mode="json") for answer in answers])
        return
    for answer in answers:
        extra = (
            f" and {answer.alerts_removed} alerts it was the evidence of"
            if answer.alerts_removed
            else ""
        )
        console.print(f"deleted run {answer.id}{extra}")


@app.command("delete-project")
def data_delete_project(
    project: str = typer.Argument(..., help="The project whose runs all go."),
    yes: bool = typer.Option(False, "--yes", help="Do it: without it, nothing is deleted."),
    server: "str | None" = ACTING_SERVER_OPTION,
    admin_token: "str | None" = ACTING_ADMIN_TOKEN_OPTION,
    creds_dir: "str | None" = CREDS_DIR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete every run of a project on the results server (admins). Recorded in the audit
    trail.

    Example: perffarm data delete-project old-prototype --yes
    """
    from perffarm.client import calls
    from perffarm.console import UsageError, console, print_json

    if not yes:
        raise UsageError(f"this deletes every run of project {project!r}: add --yes to do it")
    answer = _call(server, creds_dir, admin_token, calls.delete_project(project))
    if as_json:
        print_json(answer.model_dump(mode="json"))
    else:
        console.print(f"deleted project {project}: {answer.runs_deleted} runs")


@app.command("keep")
def data_keep(
    run_id: str = typer.Argument(..., help="The run to keep whole."),
    off: bool = typer.Option(False, "--off", help="Remove the mark instead."),
    server: "str | None" = ACTING_SERVER_OPTION,
    admin_token: "str | None" = ACTING_ADMIN_TOKEN_OPTION,
    creds_dir: "str | None" = CREDS_DIR_OPTION,
) -> None:
    """Mark a run to keep its samples and attachments whatever the retention (your
    machines' runs; admins: any).

    Example: perffarm data keep 0b7e2c1a-5a47-4a2b-9d1c-2f3e4d5c6b7a
    """
    from perffarm.client import calls
    from perffarm.console import console

    _call(server, creds_dir, admin_token, calls.keep_run(run_id, not off))
    console.print(f"run {run_id} {'follows the retention again' if off else 'is kept whole'}")


@app.command("keep-project")
def data_keep_project(
    project: str = typer.Argument(..., help="The project."),
    branch: str = typer.Option("", "--branch", "-b", help="Only this branch of it."),
    off: bool = typer.Option(False, "--off", help="Remove the mark instead."),
    server: "str | None" = ACTING_SERVER_OPTION,
    admin_token: "str | None" = ACTING_ADMIN_TOKEN_OPTION,
    creds_dir: "str | None" = CREDS_DIR_OPTION,
) -> None:
    """Keep the samples of a project's runs (or one branch's) whatever the retention
    (admins); a release branch, say.

    Example: perffarm data keep-project postgres --branch REL_17_STABLE
    """
    from perffarm.client import calls
    from perffarm.console import console

    _call(server, creds_dir, admin_token, calls.keep_project(project, branch, not off))
    what = f"{project}" + (f" branch {branch}" if branch else "")
    console.print(f"{what} follows the retention again" if off else f"{what} keeps its samples")


@app.command("retention")
def data_retention(
    server: "str | None" = ACTING_SERVER_OPTION,
    admin_token: "str | None" = ACTING_ADMIN_TOKEN_OPTION,
    creds_dir: "str | None" = CREDS_DIR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The server's retention policy, what its database holds and what the policy would
    remove now (admins).

    Example: perffarm data retention --json
    """
    from perffarm.client import calls
    from perffarm.console import console, print_json

    usage = _call(server, creds_dir, admin_token, calls.retention())
    if as_json:
        print_json(usage.model_dump(mode="json"))
        return
    policy, would = usage.policy, usage.would_remove
    console.print(
        f"samples kept {policy.keep_samples}, datapoints kept {policy.keep_datapoints}; "
        f"now the policy would reduce {would.runs_reduced:,} runs "
        f"({would.samples_removed:,} samples) and remove {would.datapoints_removed:,} "
        "datapoints"
    )


@app.command("prune")
def data_prune(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; change nothing."),
    server: "str | None" = ACTING_SERVER_OPTION,
    admin_token: "str | None" = ACTING_ADMIN_TOKEN_OPTION,
    creds_dir: "str | None" = CREDS_DIR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Apply the server's retention policy now (admins); the server does it daily.

    Example: perffarm data prune --dry-run
    """
    from perffarm.client import calls
    from perffarm.console import console, print_json

    report = _call(server, creds_dir, admin_token, calls.prune(dry_run))
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    verb = "would remove" if dry_run else "removed"
    for name, value in report.model_dump().items():
        if name != "dry_run" and value:
            console.print(f"{verb} {value:,} {name.replace('_', ' ')}")
    if not report.removed_anything():
        console.print(f"{verb} nothing")


@app.command("audit")
def data_audit(
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=1000, help="How many events."),
    server: "str | None" = ACTING_SERVER_OPTION,
    admin_token: "str | None" = ACTING_ADMIN_TOKEN_OPTION,
    creds_dir: "str | None" = CREDS_DIR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Who deleted, retired or pruned what on the server, and when, newest first (admins).

    Example: perffarm data audit --limit 20
    """
    from rich.table import Table

    from perffarm.client import calls
    from perffarm.console import console, print_json

    events = _call(server, creds_dir, admin_token, calls.audit(limit))
    if as_json:
        print_json([event.model_dump(mode="json") for event in events])
        return
    table = Table("when", "who", "did", "what", "detail", title="audit")
    for event in events:
        table.add_row(
            f"{event.at:%Y-%m-%d %H:%M}", event.actor, event.action, event.target, event.detail
        )
    console.print(table)
