"""The detector's thresholds and the webhook URL: stored by an admin, overridden by the
environment, read at every detection round so a change takes effect without a restart."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from perffarm.analysis.changepoint import DEFAULT_MIN_MAGNITUDE, DEFAULT_P_VALUE, DEFAULT_WINDOW
from perffarm.model.alerts import AlertSettingsView
from perffarm.server.core.errors import Invalid
from perffarm.server.store import server_settings

ENV_WEBHOOK = "PERFFARM_ALERT_WEBHOOK"
ENV_P_VALUE = "PERFFARM_ALERT_P_VALUE"
ENV_MIN_MAGNITUDE = "PERFFARM_ALERT_MIN_MAGNITUDE"
SETTING_KEYS = {
    "alert_webhook_url": ENV_WEBHOOK,
    "alert_p_value": ENV_P_VALUE,
    "alert_min_magnitude": ENV_MIN_MAGNITUDE,
}


@dataclass(frozen=True)
class AlertSettings:
    p_value: float = DEFAULT_P_VALUE
    min_magnitude: float = DEFAULT_MIN_MAGNITUDE
    window: int = DEFAULT_WINDOW
    webhook_url: str | None = None


def _number(value: str, key: str, low: float, high: float) -> float:
    try:
        number = float(value.strip().rstrip("%")) / (100 if value.strip().endswith("%") else 1)
    except ValueError:
        raise Invalid(f"{key}: {value!r} is not a number") from None
    if not low <= number < high or not math.isfinite(number):
        raise Invalid(f"{key}: {value!r} must be at least {low} and below {high}")
    return number


def parse_setting(key: str, value: str) -> str:
    """The canonical text of a setting, or Invalid naming what is wrong."""
    if key not in SETTING_KEYS:
        raise Invalid(f"unknown alert setting {key!r}: one of {', '.join(SETTING_KEYS)}")
    value = value.strip()
    if "\x00" in value:
        raise Invalid(f"{key}: contains a NUL character")
    if key == "alert_webhook_url":
        if value and not value.startswith(("http://", "https://")):
            raise Invalid(f"{key}: give an http:// or https:// URL (or '' for none)")
        return value
    if key == "alert_p_value":
        number = _number(value, key, 1e-12, 1.0)
    else:
        number = _number(value, key, 0.0, 10.0)
    return repr(number)


def load_settings(conn: sa.Connection) -> AlertSettings:
    """Settings as stored, each overridden by its environment variable."""
    values = server_settings.read(conn, list(SETTING_KEYS))
    for key, env in SETTING_KEYS.items():
        if os.environ.get(env) is not None:
            values[key] = os.environ[env]
    parsed: dict[str, Any] = {}
    for key, text in values.items():
        try:
            canonical = parse_setting(key, text)
        except Invalid:
            continue  # a bad value is refused when set; from the environment it is ignored
        if key == "alert_webhook_url":
            parsed["webhook_url"] = canonical or None
        elif key == "alert_p_value":
            parsed["p_value"] = float(canonical)
        else:
            parsed["min_magnitude"] = float(canonical)
    return AlertSettings(**parsed)


def store_setting(conn: sa.Connection, key: str, value: str) -> None:
    server_settings.write(conn, key, parse_setting(key, value))


def settings_view(conn: sa.Connection) -> AlertSettingsView:
    current = load_settings(conn)
    return AlertSettingsView(
        **asdict(current),
        overridden_by_environment=[env for env in SETTING_KEYS.values() if env in os.environ],
    )
