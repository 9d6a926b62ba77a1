"""hyperfine's JSON export (``--export-json``).

Every run's wall time is a sample; user and system time are only reported as means, so
they are one sample each. Newer hyperfine versions also write per-run ``memory_usage_byte``.
With ``--parameter-scan``/``-L`` the command text contains the parameter's value: the
benchmark name puts the ``{name}`` placeholder back so that one command template is one
series, with the value in ``params``.
"""

from __future__ import annotations

from perffarm.adapters.base import Adapter, InputSource, Parsed
from perffarm.adapters.json_input import Node, load, peek
from perffarm.adapters.results import make_result, number_or_text
from perffarm.model import ParamValue, Result

_REPORTED = ("mean", "stddev", "median", "min", "max")


class HyperfineAdapter(Adapter):
    name = "hyperfine"
    description = "hyperfine JSON (--export-json)"

    def sniff(self, source: InputSource) -> bool:
        document = peek(source)
        if not isinstance(document, dict) or not isinstance(document.get("results"), list):
            return False
        first = next(iter(document["results"]), None)
        return isinstance(first, dict) and "command" in first and "times" in first

    def parse(self, source: InputSource) -> Parsed:
        root = load(source, self.name)
        parsed = Parsed()
        for entry in root.get("results").elements():
            parsed.results.extend(_results(entry))
        return parsed


def _results(entry: Node) -> list[Result]:
    command = entry.get("command").text()
    raw_parameters = entry.opt("parameters")
    parameters: dict[str, str] = {}
    if raw_parameters is not None:
        parameters = {key: node.text() for key, node in raw_parameters.items()}
    benchmark = _template(command, parameters)
    params: dict[str, ParamValue] = {
        key: number_or_text(value) for key, value in parameters.items()
    }
    where = f"{entry.file}: {entry.path}"
    extra: dict = {"command": command}
    extra["reported"] = {key: entry.opt_number(key) for key in _REPORTED if key in entry}
    if (exit_codes := entry.opt("exit_codes")) is not None:
        extra["exit_codes"] = [
            None if code.is_null() else code.integer() for code in exit_codes.elements()
        ]
    results = [
        make_result(
            benchmark,
            "wall time",
            entry.get("times").numbers(),
            "s",
            params=params,
            extra=extra,
            where=where,
        )
    ]
    for key, metric in (("user", "user time"), ("system", "system time")):
        if (mean := entry.opt_number(key)) is not None:
            results.append(
                make_result(
                    benchmark,
                    metric,
                    [mean],
                    "s",
                    params=params,
                    extra={"aggregate": "mean"},
                    where=where,
                )
            )
    if (memory := entry.opt("memory_usage_byte")) is not None:
        results.append(
            make_result(
                benchmark, "max memory", memory.numbers(), "bytes", params=params, where=where
            )
        )
    return results


def _template(command: str, parameters: dict[str, str]) -> str:
    """The command with each parameter's value replaced by ``{name}``, longest value first."""
    template = command
    for name, value in sorted(parameters.items(), key=lambda item: -len(item[1])):
        if value:
            template = template.replace(value, "{" + name + "}")
    return template
