"""`perffarm check`: the suite's analysis section, and git-ref baselines from a real server."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from perffarm.agent.store import LocalStore
from perffarm.analysis.compare import Override
from perffarm.analysis.config import AnalysisConfig, AnalysisConfigError, load_analysis
from perffarm.commands import main
from perffarm.model import Direction, Environment, Result, RunDocument, Source

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def make_run(
    levels: dict[str, float],
    *,
    commit: str = "c" * 40,
    branch: str = "main",
    at: datetime = T0,
    fingerprint: str = "fp-gate",
) -> RunDocument:
    """A run with ten tight samples per benchmark around its level."""
    return RunDocument(
        project="gate",
        machine="ci-01",
        started_at=at + timedelta(minutes=1),
        finished_at=at + timedelta(minutes=2),
        source=Source(branch=branch, commit=commit, commit_time=at),
        environment=Environment(
            sections={"cpu": {"model": "x"}}, fingerprint=fingerprint, fingerprint_keys=["cpu"]
        ),
        results=[
            Result(
                benchmark=name,
                metric="seconds",
                unit="s",
                direction=Direction.LOWER,
                samples=[level * (1 + 0.001 * k) for k in range(-5, 5)],
            )
            for name, level in levels.items()
        ],
    )


# -- the suite's analysis section -------------------------------------------------------------


SUITE = """\
project: gate
measurements:
  - name: x
    type: command
    command: "true"
analysis:
  max_regression: 5%
  overrides:
    "flaky-*": {ignore: true}
    "loose": {min_effect: 20%}
    "inverted": {direction: higher}
"""


def test_the_analysis_section_becomes_overrides(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    config = load_analysis(suite)
    assert config.max_regression == pytest.approx(0.05)
    assert config.override_map() == {
        "flaky-*": Override(ignore=True),
        "loose": Override(min_effect=0.20),
        "inverted": Override(direction=Direction.HIGHER),
    }
    # The name people use in a gate works too, and a file without the section is fine.
    assert AnalysisConfig.model_validate(
        {"overrides": {"a": {"max_regression": "3%"}}}
    ).override_map() == {"a": Override(min_effect=0.03)}
    plain = tmp_path / "plain.yaml"
    plain.write_text("project: gate\n")
    assert load_analysis(plain) == AnalysisConfig()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "analysis:\n  max_regression: 5\n",
            "suite.yaml:2: analysis.max_regression: did you mean 5%",
        ),
        (
            "analysis:\n  overrides:\n    x: {speed: 1}\n",
            "suite.yaml:3: analysis.overrides.x.speed: unknown key",
        ),
        ("analysis:\n  overrides:\n    x: {direction: up}\n", "analysis.overrides.x.direction"),
        ("analysis: [\n", "suite.yaml:2"),
    ],
)
def test_a_bad_analysis_section_is_one_line_naming_where(
    tmp_path: Path, section: str, message: str
) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(section)
    with pytest.raises(AnalysisConfigError) as caught:
        load_analysis(suite)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_check_applies_the_suite_overrides(
    tmp_path: Path, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["steady", "flaky-net", "loose", "inverted"]
    base = make_run(dict.fromkeys(names, 100.0))
    slower = make_run(
        {"steady": 100.0, "flaky-net": 110.0, "loose": 110.0, "inverted": 110.0},
        at=T0 + timedelta(hours=1),
        commit="d" * 40,
    )
    with LocalStore(store_path) as store:
        store.save(base)
        store.save(slower)
    argv = ["check", "--against", str(base.id), "--store", str(store_path), "--format", "json"]

    assert main(argv) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["regressions"] == 3

    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    assert main([*argv, "--suite", str(suite)]) == 0
    report = json.loads(capsys.readouterr().out)
    verdicts = {c["benchmark"]: (c["presence"], c["verdict"]) for c in report["comparisons"]}
    assert verdicts["flaky-net"][0] == "ignored"
    assert verdicts["loose"][1] == "no significant change"  # 10% < its 20%
    assert verdicts["inverted"][1] == "faster"  # higher is better for it

    # --max-regression on the command line wins over the suite's limit.
    suite.write_text(SUITE.replace("5%", "50%").replace('"loose": {min_effect: 20%}', "x: {}"))
    assert main([*argv, "--suite", str(suite), "--max-regression", "5%"]) == 1
    capsys.readouterr()

    bad = tmp_path / "bad.yaml"
    bad.write_text("analysis:\n  max_regression: lots\n")
    assert main([*argv, "--suite", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:2: analysis.max_regression" in err and "Traceback" not in err


# -- git-ref baselines from a real server -----------------------------------------------------


def git(repo: Path, *args: str, when: datetime | None = None) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org")
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def commit(repo: Path, name: str, when: datetime) -> str:
    (repo / "file.txt").write_text(name)
    git(repo, "add", "file.txt")
    git(repo, "commit", "-q", "-m", name, when=when)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.server.support import ServerProcess

    tmp = tmp_path_factory.mktemp("gate-server")
    with ServerProcess(str(tmp / "farm.db"), tmp) as process:
        yield process.url


def upload(url: str, runs: list[RunDocument]) -> None:
    from tests.server.support import ADMIN

    with httpx.Client(base_url=url, timeout=30) as client:
        name = "ci-01"
        made = client.post("/api/v1/machines", json={"name": name, "owner": "ci"})
        if made.status_code == 201:
            secret = made.json()["secret"]
            client.post(
                f"/api/v1/machines/{name}/approve", headers={"Authorization": f"Bearer {ADMIN}"}
            ).raise_for_status()
            upload.secret = secret  # type: ignore[attr-defined]
        body = {"runs": [r.model_dump(mode="json", by_alias=True) for r in runs], "probe": None}
        answer = client.post(
            "/api/v1/runs/batch",
            json=body,
            headers={"Authorization": f"Bearer {name}:{upload.secret}"},  # type: ignore[attr-defined]
        )
        answer.raise_for_status()
        assert {o["outcome"] for o in answer.json()["outcomes"]} == {"stored"}


@pytest.fixture(scope="module")
def history(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """main: c1 (100) - c2 (100) - c3 (110); feature forks at c2: f1.

    The server has runs of c1, c2 and c3 on main.
    """
    repo = tmp_path_factory.mktemp("repo")
    git(repo, "init", "-q", "-b", "main")
    times = [T0 + timedelta(hours=h) for h in range(5)]
    c1 = commit(repo, "c1", times[0])
    c2 = commit(repo, "c2", times[1])
    c3 = commit(repo, "c3", times[2])
    git(repo, "checkout", "-q", "-b", "feature", c2)
    f1 = commit(repo, "f1", times[3])
    git(repo, "checkout", "-q", "main")
    runs = {
        sha: make_run({"query": level}, commit=sha, at=at)
        for sha, level, at in ((c1, 100.0, times[0]), (c2, 100.0, times[1]), (c3, 110.0, times[2]))
    }
    upload(server, list(runs.values()))
    return {"repo": repo, "c2": c2, "c3": c3, "f1": f1, "runs": runs, "time_f1": times[3]}


def _check(server: str, repo: Path, store_path: Path, *extra: str) -> list[str]:
    return [
        "check",
        "--server",
        server,
        "--repo",
        str(repo),
        "--store",
        str(store_path),
        "--format",
        "json",
        *extra,
    ]


def test_a_branch_is_compared_with_its_fork_point_on_the_server(
    server: str, history: dict, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The feature branch is 10% slower than its fork point c2, and as fast as main's c3:
    # a gate against "the latest main" would pass it; the fork point is the honest baseline.
    contender = make_run(
        {"query": 110.0}, commit=history["f1"], branch="feature", at=history["time_f1"]
    )
    with LocalStore(store_path) as store:
        store.save(contender)
    code = main(_check(server, history["repo"], store_path, "--against", "main"))
    captured = capsys.readouterr()
    assert code == 1, captured.err
    report = json.loads(captured.out)
    assert report["baseline"] == str(history["runs"][history["c2"]].id)
    assert "fork point" in captured.err


def test_a_default_branch_commit_is_compared_with_its_predecessors(
    server: str, history: dict, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c3_run = history["runs"][history["c3"]]
    contender = make_run({"query": 110.0}, commit=history["c3"], at=c3_run.source.commit_time)
    with LocalStore(store_path) as store:
        store.save(contender)
    code = main(_check(server, history["repo"], store_path, "--against", "origin/main"))
    # origin/main does not exist in this repository: one line, exit 3 (no verdict).
    assert code == 3
    assert "origin/main" in capsys.readouterr().err

    code = main(
        _check(server, history["repo"], store_path, "--against", "main", "--baseline-runs", "2")
    )
    captured = capsys.readouterr()
    assert code == 1, captured.err
    # The run just before c3 on main is c2's; two runs pool c2 and c1 (both at 100).
    assert json.loads(captured.out)["baseline"] == str(history["runs"][history["c2"]].id)
    assert "before" in captured.err


def test_git_ref_baseline_errors_are_one_line_and_no_verdict(
    server: str, history: dict, store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_machine = make_run(
        {"query": 110.0},
        commit=history["f1"],
        branch="feature",
        at=history["time_f1"],
        fingerprint="fp-unknown",
    )
    with LocalStore(store_path) as store:
        store.save(other_machine)
    code = main(_check(server, history["repo"], store_path, "--against", "main"))
    err = capsys.readouterr().err
    assert code == 3 and "has no run of 'gate'" in err and "fp-unknown" in err

    code = main(_check(server, tmp_path, store_path, "--against", "main"))
    err = capsys.readouterr().err
    assert code == 3 and "not a git repository" in err

    code = main(_check("http://127.0.0.1:9", history["repo"], store_path, "--against", "main"))
    err = capsys.readouterr().err
    # The server down: no verdict (3), never a regression (1) nor a pass.
    assert code == 3 and "cannot reach" in err and "Traceback" not in err
