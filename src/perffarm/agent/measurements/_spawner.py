"""A small process that starts the commands the ``command`` measurement times.

Why a separate process: Linux counts a child's peak RSS from the moment it is forked, so a
command forked straight from perffarm (numpy, scipy and all) would report perffarm's own
memory as its max RSS. Forked from this small interpreter (started with ``-I -S``, only
``os``, ``json`` and ``time`` imported), the floor is a few MiB instead of a hundred.

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout. The
process ends when stdin closes. It imports nothing from perffarm on purpose.
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
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: become the command
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.chdir(request["cwd"])
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(stdout, 1)
            os.dup2(stderr, 2)
            os.execvpe(argv[0], argv, request["env"])
        except OSError as exc:
            os.write(2, f"cannot start {argv[0]}: {exc.strerror}\n".encode())
            os._exit(127)
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


def main():
    # Ctrl-C reaches the whole process group: the command dies of it, and this process
    # reports that, instead of dying first and leaving perffarm without an answer.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for line in sys.stdin:
        try:
            answer = _run(json.loads(line))
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
