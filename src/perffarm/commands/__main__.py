"""``python -m perffarm.commands ...``: the `perffarm` command without its console script
(how a load test starts its own worker and server processes)."""

from perffarm.commands import run

run()
