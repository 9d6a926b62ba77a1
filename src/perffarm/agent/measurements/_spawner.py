"""A small process that starts the commands the ``command`` measurement times.

Why a separate process: Linux counts a child's peak RSS from the moment it is forked, so a
command forked straight from perffarm (numpy, scipy and all) would report perffarm's own
memory as its max RSS. Forked from this small interpreter (started with ``-I -S``, only
``os``, ``json`` and ``time`` imported), the floor is a few MiB instead of a hundred.

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout. The
process ends when stdin closes. It imports nothing from perffarm on purpose.

It dies with perffarm, and so do the commands it started (perffarm.agent.children): perffarm
starts it as the leader of a new process group with a parent-death signal (SIGTERM); the
commands stay in its group, and on that signal it kills the whole group. A SIGTERM while
perffarm lives is perffarm ending the group itself, and is left to the command.

``_spawner.py --guard PARENT_PID -- ARGV...`` is the same guard around one command (a build
step): it runs ARGV in its group and exits with ARGV's status (dying of the same signal).
"""

import json
import os
import signal
import sys
import time


def _run(request):
    stdout = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    stderr = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    argv = request["argv"]
    if request["shell"]:
        argv = ["/bin/sh", "-c", argv]
    # posix_spawn (vfork underneath) is several times cheaper than fork from Python. It has
    # no chdir action before Python 3.13's, and this process is single-threaded, so it
    # changes its own directory instead.
    os.chdir(request["cwd"])
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, stdout, 1),
        (os.POSIX_SPAWN_DUP2, stderr, 2),
    ]
    started = time.perf_counter()
    try:
        pid = os.posix_spawnp(
            argv[0], argv, request["env"], file_actions=actions, setsigdef=(signal.SIGINT,)
        )
    except OSError as exc:
        os.close(stdout)
        os.close(stderr)
        return {"error": f"cannot start {argv[0]}: {exc.strerror}"}
    os.close(stdout)
    os.close(stderr)
    timeout = request.get("timeout")
    deadline = started + timeout if timeout else None
    timed_out = False
    while True:
        if deadline is None:
            _, status, usage = os.wait4(pid, 0)
            break
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            timed_out = True
            break
        time.sleep(0.0005)
    wall = time.perf_counter() - started
    return {
        "exit_status": os.waitstatus_to_exitcode(status),
        "wall_time": wall,
        "user_time": usage.ru_utime,
        "sys_time": usage.ru_stime,
        "max_rss_kib": usage.ru_maxrss,
        "timed_out": timed_out,
    }


def _guard_group(parent):
    """End the whole process group when ``parent`` (perffarm) has died."""

    def on_sigterm(signum, frame):
        if os.getppid() != parent:  # re-parented: perffarm is gone
            os.killpg(0, signal.SIGKILL)

    signal.signal(signal.SIGTERM, on_sigterm)
    if os.getppid() != parent:
        os.killpg(0, signal.SIGKILL)


def guard(parent, argv):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _guard_group(parent)
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, setsigdef=(signal.SIGINT,))
    except OSError as exc:
        sys.stderr.write(f"cannot start {argv[0]}: {exc.strerror}\n")
        sys.exit(127)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


def main():
    # perffarm forwards Ctrl-C to the whole process group: the command dies of it, and
    # this process reports that, instead of dying first and leaving perffarm without an
    # answer.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if len(sys.argv) > 1:
        _guard_group(int(sys.argv[1]))
    for line in sys.stdin:
        try:
            answer = _run(json.loads(line))
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--guard"]:
        guard(int(sys.argv[2]), sys.argv[4:])
    else:
        main()
