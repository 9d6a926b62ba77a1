"""github-action-benchmark's custom JSON (``tool: customSmallerIsBetter``/``customBiggerIsBetter``).

``[{"name": ..., "unit": ..., "value": ..., "range": "± 0.3", "extra": "..."}]``: one
result per entry with ``value`` as its sample. Which way is better is chosen in the
workflow, not in the file, so the direction follows the unit (rates are higher-is-better,
everything else lower); ``range`` and ``extra`` are kept.
"""

from __future__ import annotations

from perffarm.adapters.base import Adapter, InputSource, Parsed
from perffarm.adapters.json_input import load, peek
from perffarm.adapters.results import make_result


class GithubActionBenchmarkAdapter(Adapter):
    name = "github-action-benchmark"
    description = "github-action-benchmark custom JSON ([{name, unit, value}])"

    def sniff(self, source: InputSource) -> bool:
        document = peek(source)
        if not isinstance(document, list) or not document:
            return False
        first = document[0]
        return isinstance(first, dict) and {"name", "unit", "value"} <= first.keys()

    def parse(self, source: InputSource) -> Parsed:
        root = load(source, self.name)
        parsed = Parsed()
        for entry in root.elements():
            extra = {}
            for key in ("range", "extra"):
                if (node := entry.opt(key)) is not None:
                    extra[key] = node.value if isinstance(node.value, str) else str(node.value)
            parsed.results.append(
                make_result(
                    entry.get("name").text(),
                    "value",
                    [entry.get("value").number()],
                    entry.get("unit").text(),
                    extra=extra,
                    where=f"{entry.file}: {entry.path}",
                )
            )
        return parsed
