"""The one redaction rule: no token or secret embedded in any text survives it."""

from __future__ import annotations

import ast
import io
import json
import logging
from pathlib import Path
from urllib.parse import quote

import pytest
import uvicorn.logging
from hypothesis import assume, given
from hypothesis import strategies as st

import perffarm.redact
from perffarm.redact import RedactingFilter, install, redact, set_secrets

TEXT = st.text()
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ALNUM = URLSAFE[:62]
MARKERS = ("***", "[hidden]", "[token]")
# A secret value as a suite's secure.yaml holds it: anything but the markers' characters.
SECRET_VALUE = st.text(
    alphabet=st.characters(blacklist_characters="*[]", blacklist_categories=("Cs",)),
    min_size=1,
)


@st.composite
def perffarm_tokens(draw: st.DrawFn) -> tuple[str, str]:
    """A token as the server issues it, and its secret part."""
    kind = draw(st.sampled_from("tar"))
    key = draw(st.text(alphabet=ALNUM, min_size=12, max_size=12))
    secret = draw(st.text(alphabet=URLSAFE, min_size=20, max_size=60))
    return f"pf{kind}_{key}_{secret}", secret


@given(prefix=TEXT, suffix=TEXT, token=perffarm_tokens())
def test_a_perffarm_token_anywhere_is_hidden(prefix: str, suffix: str, token) -> None:
    whole, secret = token
    assume(secret not in prefix + suffix)
    assert secret not in redact(prefix + whole + suffix)


@given(
    prefix=TEXT,
    suffix=st.one_of(st.just(""), st.from_regex(r"\A[\s\"',][\s\S]*", fullmatch=True)),
    secret=st.text(alphabet=URLSAFE + "./+=~", min_size=8),
    scheme=st.sampled_from(["Bearer ", "bearer  ", "BEARER\t"]),
)
def test_a_bearer_credential_is_hidden(prefix: str, suffix: str, secret: str, scheme: str) -> None:
    assume(secret not in prefix + suffix)
    assert secret not in redact(f"{prefix}Authorization: {scheme}{secret}{suffix}")


@given(
    prefix=TEXT,
    suffix=TEXT,
    key=st.sampled_from(["token", "code", "password", "client_secret", "state", "csrf_token"]),
    value=st.text(min_size=8),
)
def test_a_secret_query_parameter_is_hidden(prefix: str, suffix: str, key: str, value: str) -> None:
    # As a URL carries it: percent-encoded, then ended by & or the end of the query.
    encoded = quote(value, safe="")
    assume(encoded not in MARKERS)
    assume(encoded not in prefix + suffix)
    assert encoded not in redact(f"{prefix}?{key}={encoded}&{suffix}")


@given(
    prefix=TEXT,
    suffix=TEXT,
    key=st.sampled_from(["password", "secret", "token", "access_token", "refresh_token"]),
    value=st.text(min_size=8),
)
def test_a_secret_json_field_is_hidden(prefix: str, suffix: str, key: str, value: str) -> None:
    document = json.dumps({"name": "x", key: value})
    assume(value not in MARKERS)  # what is hidden already stays as it is
    assume(json.dumps(value)[1:-1] not in prefix + suffix)
    hidden = redact(prefix + document + suffix)
    assert json.dumps(value)[1:-1] not in hidden


@given(prefix=TEXT, suffix=TEXT, secret=SECRET_VALUE, others=st.lists(SECRET_VALUE, max_size=3))
def test_a_known_value_is_hidden(prefix: str, suffix: str, secret: str, others: list[str]) -> None:
    # Whatever else is secret too (a shorter secret inside this one, say). A value that is
    # part of a marker ("hidden" in "[hidden]") may show as the marker itself.
    assume(all(secret not in marker for marker in ("[hidden]", "[token]")))
    assert secret not in redact(prefix + secret + suffix, [*others, secret])


@given(TEXT)
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text, ["hunter2"])
    assert redact(once, ["hunter2"]) == once


def test_examples() -> None:
    assert redact("nothing secret here") == "nothing secret here"
    assert redact("GET /device?code=secret-code&state=st&x=1 HTTP/1.1") == (
        "GET /device?code=[hidden]&state=[hidden]&x=1 HTTP/1.1"
    )
    # No word boundary needed: a key ending a longer name is hidden all the same.
    assert redact("my_token=abc user_code=ABCD") == "my_token=[hidden] user_code=[hidden]"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer [hidden]"
    assert redact("sent pft_AAAAAAAAAAAA_" + "s" * 43 + ".") == "sent [token]."
    assert redact('{"password": "a\\"b", "user": "x"}') == '{"password": "[hidden]", "user": "x"}'
    # A known value goes first and stays hidden as ***, the marker the run documents use.
    assert redact("password=hunter2 and hunter2", ["hunter2"]) == "password=*** and ***"
    assert redact("a long-secret and a long", ["long", "long-secret"]) == "a *** and a ***"


def _logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.filters.clear()
    return logger


def _own_output(logger: logging.Logger, formatter: logging.Formatter) -> io.StringIO:
    """The logger writes to a stream of its own only (not through pytest's handlers, which
    other tests' filters may have been put on)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return stream


def test_the_filter_hides_messages_arguments_and_tracebacks() -> None:
    logger = _logger("perffarm.test.redact")
    stream = _own_output(logger, logging.Formatter("%(message)s"))
    install(["perffarm.test.redact"], secrets=["hunter2"])
    logger.info("login with %s", "password=hunter2")
    logger.info("%s", "Authorization: Bearer pft_AAAAAAAAAAAA_" + "s" * 43)
    try:
        raise RuntimeError("login hunter2 refused")
    except RuntimeError:
        logger.exception("failed")
    text = stream.getvalue()
    assert "hunter2" not in text and "s" * 43 not in text
    assert "login with password=***" in text
    assert "RuntimeError: login *** refused" in text


def test_arguments_stay_arguments_when_they_can() -> None:
    # uvicorn's access formatter unpacks record.args: hiding must keep them a tuple.
    logger = _logger("perffarm.test.access")
    formatter = uvicorn.logging.AccessFormatter("%(request_line)s %(status_code)s")
    stream = _own_output(logger, formatter)
    install(["perffarm.test.access"])
    logger.info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/device?code=abc123&x=1", "1.1", 200
    )
    assert stream.getvalue().strip() == "GET /device?code=[hidden]&x=1 HTTP/1.1 200 OK"


def test_install_is_idempotent_and_set_secrets_reaches_every_filter() -> None:
    logger = _logger("perffarm.test.install")
    handler = logging.NullHandler()
    logger.handlers[:] = [handler]
    first = install(["perffarm.test.install"], secrets=["one"])
    again = install(["perffarm.test.install"])
    assert first is again
    assert len([f for f in logger.filters if isinstance(f, RedactingFilter)]) == 1
    assert len([f for f in handler.filters if isinstance(f, RedactingFilter)]) == 1
    set_secrets(logger, ["two"])
    assert [f.secrets for f in (*logger.filters, *handler.filters)] == [["two"], ["two"]]


def test_the_module_is_a_leaf() -> None:
    tree = ast.parse(Path(perffarm.redact.__file__).read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.startswith("perffarm")]


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("GET /api/v1/runs?admin_token=s3cr3t-admin HTTP/1.1", "s3cr3t-admin"),
        ("GET /x?secret=hush-hush-value HTTP/1.1", "hush-hush-value"),
        ("PUT /api/v1/x/lab-01:" + "Q" * 43 + "/y HTTP/1.1", "Q" * 43),
        ("X-Perffarm-Loadtest-Token: pflt_0123456789ab_" + "z" * 43, "z" * 43),
    ],
)
def test_credentials_in_queries_and_paths_are_hidden(line: str, secret: str) -> None:
    # Issue 16, case 5: these reached the access log in clear.
    assert secret not in redact(line)


def test_ids_and_hashes_stay_readable() -> None:
    line = "run 3f2a9c1e-1111-2222-3333-444455556666 sha256 deadbeef at 12:30:05"
    assert redact(line) == line


def test_the_access_log_keeps_one_line_per_request(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 16, case 5: uvicorn's access formatter reads ``record.args``; a filter that
    dropped them made every request with a secret in its query a logging traceback."""
    import io
    import logging

    from uvicorn.logging import AccessFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
    logger = logging.getLogger("perffarm.test.access")
    logger.addHandler(handler)
    logger.propagate = False
    # Its own level: whatever another test left the root logger at (random order).
    logger.setLevel(logging.INFO)
    install(["perffarm.test.access"])
    try:
        for n in range(10):
            logger.info(
                '%s - "%s %s HTTP/%s" %d',
                "127.0.0.1:5000",
                "PUT",
                f"/test/t/peer/p{n}/metrics?token=s3cr3t{n}",
                "1.1",
                200,
            )
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10, lines
    assert all("token=[hidden]" in line and "s3cr3t" not in line for line in lines)
    assert "Traceback" not in capsys.readouterr().err


# -- which values of a secure.yaml are secrets (issue 16, case 8) -----------------------------


def test_a_spice_style_secure_yaml_hides_only_its_password() -> None:
    secure = {
        "databases": {
            "remote": {"host": "127.0.0.1", "port": 22, "user": "spice", "password": "s3cr3t-Pass"}
        }
    }
    assert perffarm.redact.secret_values(secure) == ["s3cr3t-Pass"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("port", 2),  # YAML numbers, booleans and dates are settings
        ("timeout", 30.5),
        ("ssl", True),
        ("pin", "27182818"),  # text that is a number
        ("code", "-1.5e3"),
        ("name", "spice"),  # shorter than MIN_SECRET_LENGTH
        ("padded", "  abc  "),
        ("address", "127.0.0.1"),  # local addresses
        ("address", "::1"),
        ("address", "0.0.0.0"),
        ("address", "LocalHost"),
        ("user", "postgres"),  # identity keys say who and where
        ("db_user", "benchmark"),
        ("remote-host", "db7.lab.example.org"),
        ("user_name", "benchmark"),
        ("Database", "pgbench_db"),
    ],
)
def test_values_too_short_or_too_common_are_not_secrets(key: str, value: object) -> None:
    assert perffarm.redact.secret_values({key: value}) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("password", "s3cr3t-Pass"),
        ("token", "123456abc"),
        ("user_password", "postgres"),  # a credential, whatever it looks like
        ("host_key", "AAAAC3NzaC1lZDI1NTE5"),
        ("address", "10.1.2.3"),  # not a local address
        ("pguser", "benchmark"),  # not an identity key: on the safe side
        ("key", "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"),
    ],
)
def test_other_text_of_six_characters_or_more_is_secret(key: str, value: str) -> None:
    assert perffarm.redact.secret_values({key: value}) == [value]


def test_secrets_are_found_at_any_depth_and_in_lists_longest_first() -> None:
    secure = {"a": ["first-secret", {"deeper": "the-longest-secret"}], "b": {"c": "other-secret"}}
    assert perffarm.redact.secret_values(secure) == [
        "the-longest-secret",
        "first-secret",
        "other-secret",
    ]


@given(prefix=st.binary(), suffix=st.binary(), secret=SECRET_VALUE, others=st.lists(SECRET_VALUE))
def test_a_known_value_is_hidden_in_bytes(
    prefix: bytes, suffix: bytes, secret: str, others: list[str]
) -> None:
    # Bytes are hidden exactly as text is (latin-1 maps each byte to one character).
    encoded = secret.encode("utf-8")
    data = perffarm.redact.hide_values_in_bytes(prefix + encoded + suffix, [*others, secret])
    assert encoded not in data
    assert data == perffarm.redact.hide_values(
        (prefix + encoded + suffix).decode("latin-1"),
        [value.encode("utf-8").decode("latin-1") for value in [*others, secret]],
    ).encode("latin-1")


def test_a_machine_credential_in_a_percent_encoded_path_is_hidden() -> None:
    secret = "A" * 43
    line = f'"GET /api/v1/machines/lab-01%3A{secret} HTTP/1.1" 404'
    assert secret not in redact(line) and "lab-01%3A" in redact(line)
