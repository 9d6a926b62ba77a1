"""An adapter: queuebench's text output (``NAME: N msg/s``)."""

from __future__ import annotations

from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.adapters.results import make_result
from perffarm.adapters.text_input import line_error, numbered_lines, sniff_text


class QueueBenchAdapter(Adapter):
    name = "queuebench"
    description = "queuebench text output (NAME: N msg/s)"

    def sniff(self, source: InputSource) -> bool:
        # Cheap, and never raises: look at the content only.
        return sniff_text(source).startswith("queuebench ")

    def parse(self, source: InputSource) -> Parsed:
        parsed = Parsed()
        for number, line in numbered_lines(source):
            if ":" not in line or line.startswith("queuebench "):
                continue
            name, _, figure = line.partition(":")
            try:
                value = float(figure.split()[0])
            except (ValueError, IndexError):
                raise line_error(source, number, line, "expected 'NAME: N msg/s'") from None
            parsed.results.append(make_result(name.strip(), "throughput", [value], "msg/s"))
        if not parsed.results:
            raise AdapterError("no queuebench results found")
        return parsed
