"""Pages as HTML: the Jinja2 templates, their filters, and ``render`` with what every page
shows (who is signed in, the CSRF token of its forms, whether the chart library is there)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from perffarm import __version__
from perffarm.model.api import API_PREFIX
from perffarm.server.core.principal import Principal
from perffarm.server.http.csrf import csrf_token, set_csrf_cookie
from perffarm.server.http.errors import without_echoed_secrets
from perffarm.web import assets

TEMPLATES = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES)


def number(value: Any, digits: int = 4) -> str:
    """A measurement as people read it: a few significant digits, no float noise."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0 or not math.isfinite(value):
        return str(value)
    magnitude = math.floor(math.log10(abs(value)))
    if -4 <= magnitude < 7:
        decimals = max(0, digits - 1 - magnitude)
        return f"{value:,.{decimals}f}"
    return f"{value:.{digits - 1}e}"


def when(value: Any) -> str:
    if not value:
        return "–"
    text = value if isinstance(value, str) else value.isoformat()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def params(value: Any) -> str:
    if not value:
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))


def size(value: Any) -> str:
    if not isinstance(value, int):
        return "–"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{value} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return str(amount)


def epoch_ms(value: Any) -> str:
    """Load tests keep times as epoch milliseconds."""
    if not isinstance(value, int | float):
        return "–"
    return when(datetime.fromtimestamp(value / 1000, UTC).isoformat())


templates.env.filters["number"] = number
templates.env.filters["epoch_ms"] = epoch_ms
templates.env.filters["when"] = when
templates.env.filters["params"] = params
templates.env.filters["size"] = size
# Text that becomes one segment of a link's path (an owner, an attachment's name): every
# character but the unreserved ones escaped, slashes included, so that "a/../b" stays a name
# instead of a step up that browsers take before asking.
templates.env.filters["segment"] = lambda v: quote(str(v), safe="")
templates.env.filters["tojson_compact"] = lambda v: json.dumps(v, separators=(",", ":"))
templates.env.globals["version"] = __version__
templates.env.globals["api"] = API_PREFIX
templates.env.globals["urlencode"] = urlencode


def compile_all() -> None:
    """Compile every template now rather than for the first visitor of each page (a few
    hundred milliseconds)."""
    for template in TEMPLATES.glob("*.html"):
        templates.get_template(template.name)


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("vendor_missing", assets.missing())
    # Who is signed in (web session): named in the header with a sign-out form; an admin
    # also gets the forms that change things (approve a machine). Forms carry a CSRF token.
    who: Principal | None = getattr(request.state, "principal", None)
    user = who.user if who is not None and who.via_session else None
    context["signed_in"] = user
    context["can_admin"] = who is not None and user is not None and who.admin
    token, new = csrf_token(request) if user is not None else ("", False)
    context["csrf"] = token
    # Where signing in comes back to: this page, unless its path holds what looks like a
    # credential (a client's mistake), which a link would spread.
    context["signin_next"] = without_echoed_secrets(request, request.url.path)
    response = templates.TemplateResponse(request, name, context, status_code=status)
    if user is not None:
        response.headers["Cache-Control"] = "no-store"
        if new:
            set_csrf_cookie(response, token, request)
    return response


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    shown = without_echoed_secrets(request, message)
    return render(request, "error.html", status=status, title=title, message=shown)


def not_found(request: Request, message: str) -> HTMLResponse:
    return error_page(request, 404, "Not found", message)
