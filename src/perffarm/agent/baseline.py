"""Which runs `perffarm check` compares: the latest stored run, and baselines that follow git.

With ``--server``, the baseline of a run is chosen on the results server by the git history
of the code measured (see docs/analysis.md): a branch is compared with its fork point, a
commit of the ref's branch with its predecessors, a tag or a commit with the runs at it; the
runs come through the one client of the API (perffarm.client: retries, version check).
Errors are user errors (one line); `perffarm check` reports them as "could not judge" (exit 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from perffarm.agent.git import GitError, run_git
from perffarm.agent.store import LocalStore
from perffarm.console import UsageError, err_console
from perffarm.model import RunDocument


def latest_run(store: LocalStore, project: str | None, besides: str | None) -> RunDocument:
    """The newest stored run of ``project`` (any project with None) other than ``besides``."""
    rows = [row for row in store.list_runs(project=project, limit=50) if row.id != besides]
    if not rows:
        what = f"of {project!r} " if project else ""
        extra = " besides the baseline" if besides else ""
        raise UsageError(f"the store has no run {what}{extra}; run the suite first or give --run")
    return store.load(rows[0].id)


def _git(repo: Path, *args: str) -> str | None:
    """The output of a git command in ``repo``, or None when git says no (a non-zero exit).

    Through the one git runner (perffarm.agent.git: a timeout, never a prompt); git missing
    or not finishing is a user error of its own.
    """
    try:
        return run_git("-C", str(repo), *args).strip()
    except GitError as exc:
        if exc.missing:
            raise UsageError("--against REF with --server needs git on the PATH") from None
        if exc.returncode is None:
            raise UsageError(str(exc)) from None
        return None


def _ref_branch(repo: Path, ref: str) -> str | None:
    """The branch a ref names (``origin/main`` → ``main``), or None for a tag or a commit."""
    full = _git(repo, "rev-parse", "--symbolic-full-name", ref) or ""
    if full.startswith("refs/heads/"):
        return full.removeprefix("refs/heads/")
    if full.startswith("refs/remotes/"):
        # refs/remotes/<remote>/<branch>; remote names cannot contain '/'.
        return full.removeprefix("refs/remotes/").split("/", 1)[-1]
    return None


@dataclass(frozen=True)
class BaselineQuery:
    """What to ask the server for, and how to say it to the user."""

    params: dict[str, str]
    description: str


def plan_baseline(
    repo: Path, ref: str, contender: RunDocument, *, branch: str | None, runs: int
) -> BaselineQuery:
    """Decide the baseline of ``contender`` against git ``ref`` (see docs/analysis.md).

    - the contender's commit is in the ref's history (a default-branch commit): the runs
      of the ref's branch before it, its predecessors;
    - otherwise (a feature branch): the runs on the ref's branch at the fork point
      ``git merge-base REF COMMIT``, else the latest ones before the fork point's time;
    - a ref that is no branch (a tag, a commit): the runs at exactly that commit.
    """
    if _git(repo, "rev-parse", "--git-dir") is None:
        raise UsageError(f"{repo} is not a git repository: give --repo with the code measured")
    target = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if target is None:
        raise UsageError(f"--against {ref!r} is not a commit, branch or tag in {repo}")
    commit = contender.source.commit or _git(repo, "rev-parse", "HEAD")
    if not commit or _git(repo, "cat-file", "-e", f"{commit}^{{commit}}") is None:
        raise UsageError(
            f"the run's commit {commit or '(none)'} is not in {repo}: check --repo, or fetch "
            "more history (git fetch --unshallow)"
        )
    params = {
        "project": contender.project,
        "limit": str(runs),
    }
    if contender.environment.fingerprint:
        params["fingerprint"] = contender.environment.fingerprint
    else:
        params["machine"] = contender.machine
    branch = branch or _ref_branch(repo, ref)
    if branch is None:
        params.update(mode="at", commit=target)
        return BaselineQuery(params, f"{ref} ({target[:10]})")
    params["branch"] = branch
    fork = _git(repo, "merge-base", target, commit)
    if fork is None:
        raise UsageError(f"{ref} and the run's commit {commit[:10]} have no common history")
    if fork == commit:
        time = _git(repo, "show", "-s", "--format=%cI", commit) or ""
        params.update(mode="before", commit=commit, commit_time=time)
        return BaselineQuery(params, f"the runs on {branch} before {commit[:10]}")
    time = _git(repo, "show", "-s", "--format=%cI", fork) or ""
    params.update(mode="at", commit=fork, commit_time=time)
    return BaselineQuery(params, f"the fork point {fork[:10]} on {branch}")


def server_baseline(
    server: str,
    ref: str,
    contender: RunDocument,
    *,
    repo: Path,
    branch: str | None,
    runs: int,
) -> RunDocument:
    """The baseline run from the server; several runs are pooled into one document."""
    from perffarm.client import Client, ClientError

    plan = plan_baseline(repo, ref, contender, branch=branch, runs=runs)
    try:
        with Client(server) as client:
            documents = client.baseline_runs(plan.params)
    except ClientError as exc:
        raise UsageError(str(exc)) from None
    if not documents:
        where = plan.params.get("fingerprint") or plan.params.get("machine")
        raise UsageError(
            f"{client.server} has no run of {contender.project!r} for {plan.description} on "
            f"{where}: run the suite there first"
        )
    err_console.print(
        f"baseline: {plan.description}: "
        + ", ".join(f"{d.id!s:.8} @{(d.source.commit or '')[:10]}" for d in documents)
    )
    first = documents[0]
    if len(documents) == 1:
        return first
    return first.model_copy(update={"results": [r for d in documents for r in d.results]})
