"""The Experiment a measurement fills: names that would collide are refused where they are
made, and a run's attachments are unique by name (issue 17, case 5)."""

from __future__ import annotations

import pytest

from perffarm.agent.experiment import Experiment
from perffarm.agent.runner import unique_names
from perffarm.model import Attachment


def test_a_second_attachment_of_one_name_is_refused_when_added() -> None:
    experiment = Experiment("m")
    experiment.add_attachment("out.txt", "first")
    with pytest.raises(ValueError, match="exists already"):
        experiment.add_attachment("out.txt", "second")
    assert [a.data() for a in experiment.attachments] == [b"first"]


def test_a_param_changes_only_when_asked_and_stays_finite() -> None:
    experiment = Experiment("m")
    experiment.set_param("clients", 4)
    experiment.set_param("clients", 4)  # the same value again is no change
    with pytest.raises(ValueError, match="replace=True"):
        experiment.set_param("clients", 8)
    experiment.set_param("clients", 8, replace=True)
    assert experiment.params == {"clients": 8}
    with pytest.raises(ValueError, match="finite"):
        experiment.set_param("ratio", float("nan"))


def test_attachments_of_two_measurements_get_names_unique_in_the_run() -> None:
    def log(measurement: str, data: bytes) -> Attachment:
        return Attachment.from_bytes("postgresql.log", data, measurement=measurement)

    named = unique_names([log("a", b"1"), log("b", b"2"), log("b", b"3")])
    assert [a.name for a in named] == ["postgresql.log", "b/postgresql.log", "b/postgresql.log.2"]
    assert [a.data() for a in named] == [b"1", b"2", b"3"]
