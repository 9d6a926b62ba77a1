"""Every extension group of perffarm, declared once: its entry points and its contract.

A plug-in is an object a distribution registers under the entry-point group
``perffarm.<group>``; perffarm's own built-ins are registered in its ``pyproject.toml`` in
exactly the same way. Each declaration below says what such an object must be, and
``Group.problem`` checks a loaded object against it, so a plug-in that breaks its contract
is refused by name when it is loaded instead of failing later, somewhere else.

The contract types live with the code that uses them (``agent``, ``adapters``,
``loadtest``, ``server``), above this package in the layering: they are named here by
their dotted path and imported only when a plug-in is checked. ``tests/plugins`` checks
that each declaration and its typed twin (the Protocol or base class) agree.

Three shapes of plug-in:

- ``subclass``: a class deriving from the contract class (which holds the defaults);
- ``class``: any class with the declared constructor and methods (structural typing: a
  third party does not need to import perffarm to write one);
- ``callable``: a function (or any callable) taking the declared positional arguments.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Shape = Literal["subclass", "class", "callable"]

#: Where the documentation of every group, with an example each, lives.
DOCS = "docs/plugins.md"


@dataclass(frozen=True)
class Group:
    """One extension group and the contract its plug-ins honour."""

    name: str
    """The short name (``measurements``); the entry-point group is ``perffarm.<name>``."""
    noun: str
    """What one plug-in is called in messages (``measurement type``)."""
    shape: Shape
    contract: str
    """The contract type, ``module:attribute`` (imported lazily, when a plug-in is checked)."""
    signature: str
    """How perffarm calls the plug-in (constructor or function), as documentation."""
    summary: str
    """What a plug-in of this group does, in one sentence."""
    arguments: int = 0
    """Positional arguments the constructor (``class``) or the callable must accept."""
    methods: tuple[str, ...] = ()
    """Methods a ``class`` plug-in must have."""
    coroutines: tuple[str, ...] = ()
    """Those of ``methods`` that must be ``async def``."""
    attributes: Mapping[str, str] = field(default_factory=dict)
    """Class attributes that must be subclasses of the given ``module:attribute`` class."""
    builtins_in: str = ""
    """Where perffarm's own plug-ins of this group live (for the docs)."""

    @property
    def entry_point_group(self) -> str:
        return f"perffarm.{self.name}"

    def contract_type(self) -> Any:
        """The contract class (or type alias), imported now."""
        return resolve(self.contract)

    def problem(self, obj: Any) -> str | None:
        """Why ``obj`` breaks this group's contract, or None when it honours it."""
        import inspect  # here: the command line starts faster without it

        if self.shape == "callable":
            if not callable(obj):
                return f"it is a {type(obj).__name__}, not a callable"
            return _arity_problem(obj, self.arguments, "it")
        if not isinstance(obj, type):
            return f"it is a {type(obj).__name__}, not a class"
        if self.shape == "subclass":
            base = self.contract_type()
            if not issubclass(obj, base):
                return f"it is not a subclass of {_dotted(base)}"
        arity = _arity_problem(obj, self.arguments, "its constructor")
        if arity is not None:
            return arity
        for method in self.methods:
            value = getattr(obj, method, None)
            if not callable(value):
                return f"it has no method {method}()"
            if method in self.coroutines and not inspect.iscoroutinefunction(value):
                return f"its method {method}() must be a coroutine (async def)"
        for attribute, dotted in self.attributes.items():
            value = getattr(obj, attribute, None)
            base = resolve(dotted)
            if not (isinstance(value, type) and issubclass(value, base)):
                return f"its {attribute} is not a subclass of {_dotted(base)}"
        return None


def resolve(dotted: str) -> Any:
    """The object ``module:attribute`` names."""
    module, _, attribute = dotted.partition(":")
    value: Any = importlib.import_module(module)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _arity_problem(obj: Any, count: int, what: str) -> str | None:
    import inspect

    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # some built-in callables have no signature: trust them
        return None
    try:
        signature.bind(*([None] * count))
    except TypeError:
        plural = "" if count == 1 else "s"
        return f"{what} must accept {count} positional argument{plural}, not {signature}"
    return None


MEASUREMENTS = Group(
    name="measurements",
    noun="measurement type",
    shape="subclass",
    contract="perffarm.agent.measurement:Measurement",
    arguments=3,
    attributes={"Options": "perffarm.agent.measurement:MeasurementOptions"},
    signature="cls(name: str, options: Options, context: MeasurementContext)",
    summary=(
        "A kind of work a suite measures (`type:` of a suite's measurement): a subclass of "
        "Measurement with an `Options` model (its keys in the suite, checked before anything "
        "runs) and the phases setup -> start -> stop -> collect, teardown always last."
    ),
    builtins_in="perffarm.agent.measurements",
)

COLLECTORS = Group(
    name="collectors",
    noun="collector",
    shape="callable",
    contract="perffarm.agent.collectors.base:Collector",
    arguments=1,
    signature="collect(context: CollectorContext) -> dict | None",
    summary=(
        "One section of the environment of every run (the entry's name is the section's "
        "name): JSON values, or None when it does not apply on this machine. It may raise; "
        "the error is recorded in the run and the other collectors go on."
    ),
    builtins_in="perffarm.agent.collectors",
)

ADAPTERS = Group(
    name="adapters",
    noun="adapter",
    shape="subclass",
    contract="perffarm.adapters.base:Adapter",
    signature="cls()  # then .sniff(source) -> bool and .parse(source) -> Parsed",
    summary=(
        "A reader of another tool's output (`perffarm ingest --format NAME`, `format:` of a "
        "command measurement): a subclass of Adapter with `name`, `description`, `sniff` "
        "(recognise the content, never raise) and `parse` (raise AdapterError naming the "
        "line or JSON path)."
    ),
    arguments=0,
    builtins_in="perffarm.adapters",
)

TRANSPORTS = Group(
    name="transports",
    noun="transport",
    shape="class",
    contract="perffarm.loadtest.transports:Transport",
    arguments=1,
    methods=("connect",),
    coroutines=("connect",),
    signature="cls(target: str); await transport.connect(peer) -> Connection",
    summary=(
        "How a load-test peer reaches the system under test (`--transport NAME`). The "
        "connection it answers has `send(data: bytes)` (never blocks) and `async close()`, "
        "and hands what it receives to `peer.on_message(data)`."
    ),
    builtins_in="perffarm.loadtest.transports",
)

ROUTINES = Group(
    name="routines",
    noun="routine",
    shape="callable",
    contract="perffarm.loadtest.routines:Routine",
    arguments=1,
    signature="make(options: dict | None) -> step(elapsed: float, delta: float, peer)",
    summary=(
        "What a load-test peer does on every tick (`--routine NAME`): a factory called once "
        "per peer with the routine's options, answering the step function the peer calls "
        "about 60 times a second."
    ),
    builtins_in="perffarm.loadtest.routines",
)

RELAYS = Group(
    name="relays",
    noun="relay",
    shape="class",
    contract="perffarm.loadtest.relays:Relay",
    arguments=2,
    methods=("encode", "deliver", "close"),
    coroutines=("deliver", "close"),
    signature=(
        "cls(url: str, options: Mapping[str, str]); encode(points) -> (body, count) in a "
        "thread; await deliver(body); await close()"
    ),
    summary=(
        "Where the load-test server sends live datapoints on to (a time-series database): "
        "`encode` turns a batch into one request body off the event loop, `deliver` sends it "
        "(raise on failure: the batch is counted as dropped, never retried)."
    ),
    builtins_in="perffarm.loadtest.relays",
)

NOTIFIERS = Group(
    name="notifiers",
    noun="notifier",
    shape="class",
    contract="perffarm.server.services.notifiers:Notifier",
    arguments=1,
    methods=("notify", "start", "stop"),
    signature="cls(context: NotifierContext); notify(groups); start(); stop(timeout)",
    summary=(
        "Who hears about new alert groups (every installed notifier does): `notify` is "
        "called by change-point detection and must only queue (never block, never raise); "
        "`start` and `stop` run with the server."
    ),
    builtins_in="perffarm.server.services.notifiers",
)

#: Every extension group, by its short name.
GROUPS: dict[str, Group] = {
    group.name: group
    for group in (
        MEASUREMENTS,
        COLLECTORS,
        ADAPTERS,
        TRANSPORTS,
        ROUTINES,
        RELAYS,
        NOTIFIERS,
    )
}
