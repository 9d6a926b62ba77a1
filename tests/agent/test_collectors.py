"""Collectors on this real machine, their isolation, the fingerprint and git sources."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import stat
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest

from perffarm.agent.collectors import (
    DEFAULT_FINGERPRINT_KEYS,
    CollectorContext,
    collect_environment,
    cpu,
    disk,
    fingerprint_of,
    gpu,
    load_collectors,
    memory,
    network,
    os_info,
    python_info,
    source_from_git,
)
from perffarm.agent.collectors import git as git_collector
from perffarm.agent.collectors._files import bracketed_choice, parse_cpu_list, parse_size
from perffarm.agent.collectors.disk import block_device_facts
from perffarm.agent.collectors.git import strip_credentials
from perffarm.agent.collectors.memory import GIB, MIB, rounded_total
from perffarm.agent.collectors.os_info import os_release, read_sysctl
from perffarm.model import Environment, Source
from tests.support import require

BUILT_IN = {"cpu", "memory", "os", "network", "disk", "python", "gpu", "git"}


@pytest.fixture
def _linux() -> None:
    require(sys.platform == "linux", "reads /proc and /sys")


@pytest.fixture
def _posix_shell() -> None:
    require(sys.platform != "win32", "the fake tool is a shell script")


linux_only = pytest.mark.usefixtures("_linux")
posix_shell = pytest.mark.usefixtures("_posix_shell")


@pytest.fixture
def outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory that git will not treat as part of an enclosing repository."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    return work


# --- the whole environment on this machine -------------------------------------------------


def test_environment_of_this_machine(outside_git: Path) -> None:
    environment = collect_environment(outside_git)

    assert environment.errors == {}
    assert {"cpu", "memory", "os", "network", "disk", "python"} <= set(environment.sections)
    assert environment.get("cpu.threads") == os.cpu_count()
    assert environment.get("memory.total_bytes") == psutil.virtual_memory().total
    assert isinstance(environment.get("cpu.model"), str) and environment.get("cpu.model")
    assert environment.get("python.version") == platform.python_version()
    assert "git" not in environment.sections  # not a checkout: not applicable, not an error
    assert environment.fingerprint_keys == sorted(DEFAULT_FINGERPRINT_KEYS)
    assert len(environment.fingerprint) == 64
    # What the store keeps and the server receives is exactly what was collected.
    assert Environment.model_validate_json(environment.model_dump_json()) == environment


def test_all_built_in_collectors_are_registered_as_entry_points() -> None:
    collectors, errors = load_collectors()
    assert errors == {}
    assert set(collectors) >= BUILT_IN
    assert collectors["cpu"] is cpu.collect and collectors["os"] is os_info.collect


def test_third_party_collector_joins_through_its_entry_point(
    tmp_path: Path, outside_git: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_dir = tmp_path / "site"
    dist_info = plugin_dir / "perffarm_board-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: perffarm-board\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[perffarm.collectors]\n"
        "board = perffarm_board_plugin:collect\n"
        "missing = perffarm_no_such_module:collect\n"
    )
    (plugin_dir / "perffarm_board_plugin.py").write_text(
        "def collect(context):\n    return {'serial': 'B-42', 'cwd': str(context.cwd)}\n"
    )
    monkeypatch.syspath_prepend(str(plugin_dir))

    environment = collect_environment(outside_git)

    assert environment.sections["board"] == {"serial": "B-42", "cwd": str(outside_git)}
    assert environment.errors["missing"].startswith("ModuleNotFoundError: ")
    assert "cpu" in environment.sections


# --- isolation ------------------------------------------------------------------------------


def test_failing_hanging_and_non_json_collectors_are_isolated(tmp_path: Path) -> None:
    release = threading.Event()

    def raises(context: CollectorContext) -> dict:
        raise RuntimeError("sensor on fire")

    def hangs(context: CollectorContext) -> dict:
        release.wait(60)
        return {"late": True}

    try:
        environment = collect_environment(
            tmp_path,
            collectors={
                "memory": memory.collect,
                "boom": raises,
                "stuck": hangs,
                "objects": lambda context: {"path": context.cwd},
                "nan": lambda context: {"ratio": float("nan")},
                "listy": lambda context: [1, 2],
                "absent": lambda context: None,
                "tuples": lambda context: {"pair": (1, 2)},
            },
            timeout=0.5,
        )
    finally:
        release.set()

    assert environment.errors["boom"] == "RuntimeError: sensor on fire"
    assert environment.errors["stuck"] == ("TimeoutError: collector did not finish within 0.5 s")
    assert re.fullmatch(
        r"TypeError: Object of type \w*Path is not JSON serializable", environment.errors["objects"]
    )
    assert environment.errors["nan"].startswith("ValueError: ")
    assert (
        environment.errors["listy"] == "TypeError: collector returned list, expected dict or None"
    )
    assert set(environment.errors) == {"boom", "stuck", "objects", "nan", "listy"}
    assert set(environment.sections) == {"memory", "tuples"}
    assert environment.sections["memory"]["total_bytes"] == psutil.virtual_memory().total
    assert environment.sections["tuples"] == {"pair": [1, 2]}


# --- the fingerprint -----------------------------------------------------------------------


def test_fingerprint_is_stable_and_follows_only_the_chosen_keys(tmp_path: Path) -> None:
    chosen = {"cpu": cpu.collect, "memory": memory.collect, "os": os_info.collect}
    first = collect_environment(tmp_path, collectors=chosen)
    second = collect_environment(tmp_path, collectors=chosen)
    assert first.fingerprint == second.fingerprint

    changed_model = first.model_copy(deep=True)
    changed_model.sections["cpu"]["model"] = "Another CPU 9000"
    assert fingerprint_of(changed_model, first.fingerprint_keys) != first.fingerprint

    changed_clock = first.model_copy(deep=True)
    changed_clock.sections["cpu"]["current_mhz"] = 1.0
    assert fingerprint_of(changed_clock, first.fingerprint_keys) == first.fingerprint

    assert fingerprint_of(first, list(reversed(DEFAULT_FINGERPRINT_KEYS))) == first.fingerprint


def test_fingerprint_keys_are_configurable_and_hash_canonical_json(tmp_path: Path) -> None:
    environment = collect_environment(
        tmp_path,
        collectors={"cpu": cpu.collect},
        fingerprint_keys=["cpu.threads", "cpu.model", "cpu.model", "gpu.count"],
    )
    assert environment.fingerprint_keys == ["cpu.model", "cpu.threads", "gpu.count"]
    model = environment.get("cpu.model")
    canonical = f'{{"cpu.model":"{model}","cpu.threads":{os.cpu_count()},"gpu.count":null}}'
    assert environment.fingerprint == hashlib.sha256(canonical.encode()).hexdigest()
    assert fingerprint_of(environment, "cpu.model") == fingerprint_of(environment, ["cpu.model"])


# --- git -----------------------------------------------------------------------------------


def _git(repo: Path, *args: str, date: str = "2024-05-01T12:00:00+02:00") -> str:
    identity = {
        "GIT_AUTHOR_NAME": "Perf Tester",
        "GIT_AUTHOR_EMAIL": "perf@example.com",
        "GIT_COMMITTER_NAME": "Perf Tester",
        "GIT_COMMITTER_EMAIL": "perf@example.com",
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_DATE": date,
    }
    completed = subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **identity},
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


@pytest.fixture
def repository(outside_git: Path) -> Path:
    """A real repository: one commit on main, a second on branch ``feature``."""
    repo = outside_git
    _git(repo, "init", "-q", "-b", "main")
    (repo / "bench.py").write_text("print('v1')\n")
    _git(repo, "add", "bench.py")
    _git(repo, "commit", "-q", "-m", "first commit")
    _git(repo, "checkout", "-q", "-b", "feature")
    (repo / "bench.py").write_text("print('v2')\n")
    _git(
        repo,
        "commit",
        "-q",
        "-am",
        "second commit\n\nwith a body",
        date="2024-05-02T08:30:00+02:00",
    )
    _git(repo, "remote", "add", "origin", "https://alice:s3cret@example.com/org/repo.git")
    return repo


def test_source_from_git_on_a_branch_then_dirty(repository: Path) -> None:
    head = _git(repository, "rev-parse", "HEAD")
    subdir = repository / "sub"
    subdir.mkdir()

    source = source_from_git(subdir)

    assert source == Source(
        repository="https://example.com/org/repo.git",
        branch="feature",
        commit=head,
        commit_time=datetime(2024, 5, 2, 8, 30, tzinfo=timezone(timedelta(hours=2))),
        dirty=False,
        subject="second commit",
    )
    assert source.commit_time is not None and source.commit_time.tzinfo is not None

    (repository / "results.json").write_text("{}")  # untracked output: still clean
    assert source_from_git(repository).dirty is False
    (repository / "bench.py").write_text("print('v3')\n")
    assert source_from_git(repository).dirty is True


def test_source_from_git_on_a_detached_head(repository: Path) -> None:
    first = _git(repository, "rev-parse", "HEAD~1")
    _git(repository, "checkout", "-q", "--detach", first)

    source = source_from_git(repository)

    assert source.branch is None
    assert source.commit == first
    assert source.subject == "first commit"
    assert source.dirty is False


def test_git_collector_holds_the_same_facts(repository: Path) -> None:
    section = git_collector.collect(CollectorContext(cwd=repository))
    assert section is not None
    assert Source.model_validate(section) == source_from_git(repository)


def test_no_source_outside_a_repository_or_without_git(
    outside_git: Path, repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert source_from_git(elsewhere) == Source()
    assert git_collector.collect(CollectorContext(cwd=elsewhere)) is None

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert source_from_git(repository) == Source()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://alice:s3cret@example.com/r.git", "https://example.com/r.git"),
        ("https://ghp_TOKEN@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://example.com:8443/r.git", "https://example.com:8443/r.git"),
        ("ssh://git:pw@example.com:22/r.git", "ssh://git@example.com:22/r.git"),
        ("ssh://git@example.com/r.git", "ssh://git@example.com/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
    ],
)
def test_remote_urls_lose_their_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


# --- gpu -----------------------------------------------------------------------------------


def _fake_tool(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


@posix_shell
def test_gpu_section_from_nvidia_smi_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_tool(
        tmp_path / "bin",
        "nvidia-smi",
        "cat <<'EOF'\n"
        "0, NVIDIA A100-SXM4-40GB, GPU-1, 00000000:07:00.0, 550.54, 40960, 1410, 1215, 400.00,"
        " Enabled\n"
        "1, Tesla T4, GPU-2, 00000000:08:00.0, 550.54, 15360, 1590, [N/A], [Not Supported],"
        " Disabled\n"
        "EOF\n",
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")

    section = gpu.collect(CollectorContext(cwd=tmp_path))

    assert section is not None
    assert section["count"] == 2 and section["driver_version"] == "550.54"
    a100, t4 = section["gpus"]
    assert a100["name"] == "NVIDIA A100-SXM4-40GB"
    assert a100["memory_total_bytes"] == 40960 * MIB
    assert a100["max_sm_mhz"] == 1410 and a100["power_limit_watts"] == 400.0
    assert t4["max_memory_mhz"] is None and t4["power_limit_watts"] is None


@posix_shell
def test_gpu_absent_is_not_applicable_but_a_broken_driver_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert gpu.collect(CollectorContext(cwd=tmp_path)) is None

    _fake_tool(
        tmp_path / "bin", "nvidia-smi", "echo 'NVIDIA-SMI has failed: no driver' >&2\nexit 9\n"
    )
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    environment = collect_environment(tmp_path, collectors={"gpu": gpu.collect})
    assert environment.errors == {
        "gpu": "RuntimeError: nvidia-smi exited with 9: NVIDIA-SMI has failed: no driver"
    }


# --- single collectors on this machine ----------------------------------------------------


def test_cpu_section_on_this_machine(tmp_path: Path) -> None:
    section = cpu.collect(CollectorContext(cwd=tmp_path))
    assert section["threads"] == os.cpu_count()
    assert section["cores"] == psutil.cpu_count(logical=False)
    assert section["architecture"] == platform.machine()
    if sys.platform == "linux":
        assert section["sockets"] >= 1
        assert section["cores"] <= section["threads"]
        assert section["l1d_cache_bytes"] is None or section["l1d_cache_bytes"] >= 1024


@linux_only
def test_disk_section_describes_the_filesystem_under_cwd(tmp_path: Path) -> None:
    section = disk.collect(CollectorContext(cwd=tmp_path))
    usage = psutil.disk_usage(str(tmp_path))
    assert section["total_bytes"] == usage.total
    assert 0 <= section["free_bytes"] <= section["total_bytes"]
    mount_point = Path(section["mount_point"])
    assert mount_point == tmp_path.resolve() or mount_point in tmp_path.resolve().parents
    assert os.stat(mount_point).st_dev == os.stat(tmp_path).st_dev
    assert section["fstype"]


def test_network_and_python_sections_on_this_machine(tmp_path: Path) -> None:
    interfaces = network.collect(CollectorContext(cwd=tmp_path))["interfaces"]
    loopback = [facts for facts in interfaces.values() if "127.0.0.1" in facts["ipv4"]]
    assert loopback and loopback[0]["up"] is True
    assert set(interfaces) == set(psutil.net_if_stats()) | set(psutil.net_if_addrs())

    python = python_info.collect(CollectorContext(cwd=tmp_path))
    assert python["bits"] == (64 if sys.maxsize > 2**32 else 32)
    assert python["executable"] == sys.executable
    assert python["implementation"] == platform.python_implementation()


@linux_only
def test_os_section_on_this_machine(tmp_path: Path) -> None:
    section = os_info.collect(CollectorContext(cwd=tmp_path))
    assert section["kernel_release"] == platform.release()
    assert datetime.fromisoformat(section["boot_time"]).tzinfo is not None
    if Path("/proc/sys/vm/swappiness").exists():
        assert section["sysctl"]["vm.swappiness"] == int(
            Path("/proc/sys/vm/swappiness").read_text()
        )


# --- parsing helpers -----------------------------------------------------------------------


def test_sysctl_values_are_typed_and_missing_keys_left_out(tmp_path: Path) -> None:
    (tmp_path / "vm").mkdir()
    (tmp_path / "vm" / "swappiness").write_text("60\n")
    (tmp_path / "net" / "ipv4").mkdir(parents=True)
    (tmp_path / "net" / "ipv4" / "tcp_rmem").write_text("4096\t131072\t6291456\n")
    (tmp_path / "net" / "ipv4" / "tcp_congestion_control").write_text("bbr\n")

    values = read_sysctl(
        ["vm.swappiness", "net.ipv4.tcp_rmem", "net.ipv4.tcp_congestion_control", "vm.absent"],
        root=tmp_path,
    )

    assert values == {
        "vm.swappiness": 60,
        "net.ipv4.tcp_rmem": "4096 131072 6291456",
        "net.ipv4.tcp_congestion_control": "bbr",
    }


def test_os_release_fields_lose_their_quotes(tmp_path: Path) -> None:
    path = tmp_path / "os-release"
    path.write_text(
        '# comment\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\n'
        "PRETTY_NAME='Ubuntu 22.04.4 LTS'\n"
    )
    assert os_release(path) == {
        "NAME": "Ubuntu",
        "VERSION_ID": "22.04",
        "ID": "ubuntu",
        "PRETTY_NAME": "Ubuntu 22.04.4 LTS",
    }


def test_partition_resolves_to_its_disk_for_model_and_rotational(tmp_path: Path) -> None:
    disk_dir = tmp_path / "devices" / "pci0" / "block" / "sda"
    partition = disk_dir / "sda1"
    partition.mkdir(parents=True)
    (partition / "partition").write_text("1\n")
    (disk_dir / "queue").mkdir()
    (disk_dir / "queue" / "rotational").write_text("0\n")
    (disk_dir / "queue" / "scheduler").write_text("none [mq-deadline] kyber\n")
    (disk_dir / "device").mkdir()
    (disk_dir / "device" / "model").write_text("Samsung SSD 980   \n")
    (tmp_path / "dev" / "block").mkdir(parents=True)
    (tmp_path / "dev" / "block" / "8:1").symlink_to(partition)

    assert block_device_facts(8, 1, sys_root=tmp_path) == {
        "block_device": "sda",
        "rotational": False,
        "model": "Samsung SSD 980",
        "scheduler": "mq-deadline",
    }
    assert block_device_facts(0, 45, sys_root=tmp_path)["block_device"] is None


def test_sysfs_formats() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpu_list("") == []
    assert parse_size("48K") == 48 * 1024
    assert parse_size("32768K") == 32 * MIB
    assert parse_size("2M") == 2 * MIB
    assert parse_size("weird") is None
    assert bracketed_choice("always [madvise] never") == "madvise"
    assert bracketed_choice(None) is None


def test_memory_total_is_rounded_past_kernel_reservations() -> None:
    assert rounded_total(25_276_510_208) == 24 * GIB  # a "24 GiB" VM as the kernel sees it
    assert rounded_total(24 * GIB - 90 * MIB) == rounded_total(24 * GIB - 20 * MIB)
    assert rounded_total(16 * GIB) != rounded_total(15 * GIB)
    assert rounded_total(1000 * MIB) == 1024 * MIB
    assert rounded_total(10 * MIB) == 64 * MIB
