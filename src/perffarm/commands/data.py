"""`perffarm data delete|delete-project|keep|keep-project|retention|prune|audit`: the
results server's data over years, as the signed-in user (their own rights, as on the web)."""

from typing import Any

import typer

from perffarm.commands._shared import JSON_OPTION, group
from perffarm.commands.login import LOGIN_CREDS_HELP, SERVER_HELP

app = group(
    "data",
    "The results server's data over years: delete runs and projects, keep samples, the "
    "retention policy and the audit trail (as the signed-in user).\n\n"
    "Example: perffarm data delete 0b7e2c1a-5a47-4a2b-9d1c-2f3e4d5c6b7a",
)

_SERVER = typer.Option(None, "--server", "-s", help=SERVER_HELP)
_CREDS = typer.Option(None, "--creds-dir", help=LOGIN_CREDS_HELP, show_default=False)


def _call(
    creds_dir: "str | None", server: "str | None", method: str, path: str, **kwargs: Any
) -> Any:
    """One API call as the signed-in user; a refusal becomes one line."""
    from perffarm.agent import login as flow
    from perffarm.console import UserError

    try:
        return flow.checked(flow.api(flow.current(creds_dir, server), method, path, **kwargs))
    except flow.LoginError as exc:
        raise UserError(str(exc)) from None


@app.command("delete")
def data_delete(
    run_ids: list[str] = typer.Argument(..., help="Ids of the runs to delete."),
    server: "str | None" = _SERVER,
    creds_dir: "str | None" = _CREDS,
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete runs on the results server (your machines' runs; admins: any), with the
    alerts they were the evidence of. Recorded in the audit trail.

    Example: perffarm data delete 0b7e2c1a-5a47-4a2b-9d1c-2f3e4d5c6b7a
    """
    from perffarm.console import console, print_json

    answers = [_call(creds_dir, server, "DELETE", f"/runs/{run_id}") for run_id in run_ids]
    if as_json:
        print_json(answers)
        return
    for answer in answers:
        alerts = answer["alerts_removed"]
        extra = f" and {alerts} alerts it was the evidence of" if alerts else ""
        console.print(f"deleted run {answer['id']}{extra}", markup=False)


@app.command("delete-project")
def data_delete_project(
    project: str = typer.Argument(..., help="The project whose runs all go."),
    yes: bool = typer.Option(False, "--yes", help="Do it: without it, nothing is deleted."),
    server: "str | None" = _SERVER,
    creds_dir: "str | None" = _CREDS,
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete every run of a project on the results server (admins). Recorded in the audit
    trail.

    Example: perffarm data delete-project old-prototype --yes
    """
    from urllib.parse import quote

    from perffarm.console import UsageError, console, print_json

    if not yes:
        raise UsageError(f"this deletes every run of project {project!r}: add --yes to do it")
    answer = _call(creds_dir, server, "DELETE", f"/projects/{quote(project, safe='')}")
    if as_json:
        print_json(answer)
    else:
        console.print(f"deleted project {project}: {answer['runs_deleted']} runs", markup=False)


@app.command("keep")
def data_keep(
    run_id: str = typer.Argument(..., help="The run to keep whole."),
    off: bool = typer.Option(False, "--off", help="Remove the mark instead."),
    server: "str | None" = _SERVER,
    creds_dir: "str | None" = _CREDS,
) -> None:
    """Mark a run to keep its samples and attachments whatever the retention (your
    machines' runs; admins: any).

    Example: perffarm data keep 0b7e2c1a-5a47-4a2b-9d1c-2f3e4d5c6b7a
    """
    from perffarm.console import console

    _call(creds_dir, server, "PUT", f"/runs/{run_id}/keep", json={"keep": not off})
    console.print(f"run {run_id} {'follows the retention again' if off else 'is kept whole'}")


@app.command("keep-project")
def data_keep_project(
    project: str = typer.Argument(..., help="The project."),
    branch: str = typer.Option("", "--branch", "-b", help="Only this branch of it."),
    off: bool = typer.Option(False, "--off", help="Remove the mark instead."),
    server: "str | None" = _SERVER,
    creds_dir: "str | None" = _CREDS,
) -> None:
    """Keep the samples of a project's runs (or one branch's) whatever the retention
    (admins); a release branch, say.

    Example: perffarm data keep-project postgres --branch REL_17_STABLE
    """
    from urllib.parse import quote

    from perffarm.console import console

    path = f"/projects/{quote(project, safe='')}/keep"
    what = f"{project}" + (f" branch {branch}" if branch else "")
    if off:
        _call(creds_dir, server, "DELETE", path, params={"branch": branch})
        console.print(f"{what} follows the retention again", markup=False)
    else:
        _call(creds_dir, server, "PUT", path, json={"branch": branch})
        console.print(f"{what} keeps its samples", markup=False)


@app.command("retention")
def data_retention(
    server: "str | None" = _SERVER,
    creds_dir: "str | None" = _CREDS,
    as_json: bool = JSON_OPTION,
) -> None:
    """The server's retention policy, what its database holds and what the policy would
    remove now (admins).

    Example: perffarm data retention --json
    """
    from perffarm.console import console, print_json

    usage = _call(creds_dir, server, "GET", "/admin/retention")
    if as_json:
        print_json(usage)
        return
    policy, would = usage["policy"], usage["would_remove"]
    console.print(
        f"samples kept {policy['keep_samples']}, datapoints kept {policy['keep_datapoints']}; "
        f"now the policy would reduce {would['runs_reduced']:,} runs "
        f"({would['samples_removed']:,} samples) and remove {would['datapoints_removed']:,} "
        "datapoints",
        markup=False,
    )


@app.command("prune")
def data_prune(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; change nothing."),
    server: "str | None" = _SERVER,
    creds_dir: "str | None" = _CREDS,
    as_json: bool = JSON_OPTION,
) -> None:
    """Apply the server's retention policy now (admins); the server does it daily.

    Example: perffarm data prune --dry-run
    """
    from perffarm.console import console, print_json

    report = _call(creds_dir, server, "POST", "/admin/prune", params={"dry_run": dry_run})
    if as_json:
        print_json(report)
        return
    verb = "would remove" if dry_run else "removed"
    for name, value in report.items():
        if name != "dry_run" and value:
            console.print(f"{verb} {value:,} {name.replace('_', ' ')}", markup=False)


@app.command("audit")
def data_audit(
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=1000, help="How many events."),
    server: "str | None" = _SERVER,
    creds_dir: "str | None" = _CREDS,
    as_json: bool = JSON_OPTION,
) -> None:
    """Who deleted, retired or pruned what on the server, and when, newest first (admins).

    Example: perffarm data audit --limit 20
    """
    from rich.table import Table
    from rich.text import Text

    from perffarm.console import console, print_json

    events = _call(creds_dir, server, "GET", "/admin/audit", params={"limit": limit})["items"]
    if as_json:
        print_json(events)
        return
    table = Table("when", "who", "did", "what", "detail", title="audit")
    for event in events:
        table.add_row(
            event["at"][:16].replace("T", " "),
            Text(event["actor"]),
            event["action"],
            Text(event["target"]),
            Text(event["detail"]),
        )
    console.print(table)
