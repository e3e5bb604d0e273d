"""The JSON-lines event log: append/read, filters, torn lines, and redaction of secrets."""
from __future__ import annotations

import json
import re

import pytest

from failover_engine.engine.events import REDACTED, EventLog, redact
from failover_engine.core.timeline import iso

SECRET = "s3cr3t-VALUE-9f8e7d"


@pytest.fixture
def log(tmp_path) -> EventLog:
    return EventLog(tmp_path / "state" / "events.jsonl")


# --------------------------------------------------------------------------- append / read
def test_append_then_read_in_order(log):
    first = log.append("plan", "web", action="failover", target={"usw2": 100})
    log.append("applied", "web", calls=2)
    events = log.read()
    assert [e["event"] for e in events] == ["plan", "applied"]
    assert events[0] == first
    assert events[0]["service"] == "web" and events[0]["target"] == {"usw2": 100}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", events[0]["ts"])
    assert isinstance(events[0]["t"], float) and events[0]["t"] <= events[1]["t"]


def test_each_event_is_one_json_line(log):
    log.append("a", "web", text="line one\nline two")
    log.append("b", None)
    lines = log.path.read_text().splitlines()
    assert len(lines) == 2
    assert [json.loads(line)["event"] for line in lines] == ["a", "b"]


def test_read_of_a_missing_log_is_empty(log):
    assert log.read() == [] and not log.path.exists()


def test_append_creates_the_directory(log):
    log.append("x")
    assert log.path.is_file()


@pytest.mark.parametrize("service, want", [(None, ["a1", "b1", "a2", "n"]), ("a", ["a1", "a2"]), ("b", ["b1"]),
                                           ("c", [])])
def test_read_filters_by_service(log, service, want):
    log.append("a1", "a")
    log.append("b1", "b")
    log.append("a2", "a")
    log.append("n", None)
    assert [e["event"] for e in log.read(service)] == want


@pytest.mark.parametrize("limit, want", [(1, ["e4"]), (2, ["e3", "e4"]), (5, ["e0", "e1", "e2", "e3", "e4"]),
                                         (50, ["e0", "e1", "e2", "e3", "e4"]), (None, ["e0", "e1", "e2", "e3", "e4"])])
def test_read_limit_keeps_the_latest(log, limit, want):
    for i in range(5):
        log.append(f"e{i}", "web")
    assert [e["event"] for e in log.read(limit=limit)] == want


def test_limit_applies_after_the_service_filter(log):
    for i in range(3):
        log.append(f"a{i}", "a")
        log.append(f"b{i}", "b")
    assert [e["event"] for e in log.read("a", limit=2)] == ["a1", "a2"]


@pytest.mark.parametrize("torn", ['{"ts": "2024-01-01T00:00:00.000Z", "event": "appl', "{", '{"event": "x",'])
def test_a_torn_last_line_is_ignored(log, torn):
    log.append("plan", "web")
    log.append("applied", "web")
    with log.path.open("a") as fh:
        fh.write(torn)  # a crash in the middle of a write
    assert [e["event"] for e in log.read()] == ["plan", "applied"]


def test_blank_lines_are_ignored_and_appends_after_a_torn_line_still_read(log):
    log.append("one")
    with log.path.open("a") as fh:
        fh.write("\n\n")
    log.append("two")
    assert [e["event"] for e in log.read()] == ["one", "two"]


def test_values_that_json_cannot_encode_are_written_as_text(log, tmp_path):
    rec = log.append("x", "web", where=tmp_path)
    assert rec["where"] == tmp_path  # the returned record is not converted ...
    assert log.read()[0]["where"] == str(tmp_path)  # ... the line is


@pytest.mark.parametrize("ts, text", [(None, None), (0.0, "1970-01-01T00:00:00.000Z"),
                                      (1_700_000_000.1234, "2023-11-14T22:13:20.123Z")])
def test_iso(ts, text):
    assert iso(ts) == text


# --------------------------------------------------------------------------- redaction
@pytest.mark.parametrize("key", ["password", "PASSWORD", "db_password", "passwd", "token", "access_token",
                                 "secret", "secret_access_key", "aws_secret_access_key", "Authorization",
                                 "authorization", "api_key", "api-key", "apikey", "private_key", "credentials"])
def test_secret_looking_keys_are_masked(key):
    assert redact({key: SECRET, "region": "us-east-1"}) == {key: REDACTED, "region": "us-east-1"}


@pytest.mark.parametrize(
    "value, path",
    [
        ({"connection": {"password": SECRET}}, ("connection", "password")),
        ({"a": {"b": {"c": {"token": SECRET}}}}, ("a", "b", "c", "token")),
        ({"probes": [{"headers": {"Authorization": f"Bearer {SECRET}"}}]}, ("probes", 0, "headers", "Authorization")),
        ({"list": [[{"secret_access_key": SECRET}]]}, ("list", 0, 0, "secret_access_key")),
        ({"t": ({"token": SECRET},)}, ("t", 0, "token")),
    ],
)
def test_secrets_are_masked_at_any_depth(value, path):
    out = redact(value)
    for part in path:
        out = out[part]
    assert out == REDACTED


def test_a_secret_key_holding_a_structure_is_masked_whole():
    assert redact({"credentials": {"user": "u", "key": SECRET}}) == {"credentials": REDACTED}


@pytest.mark.parametrize("empty", [None, ""])
def test_empty_secrets_stay_visible_as_empty(empty):
    assert redact({"password": empty}) == {"password": empty}


@pytest.mark.parametrize(
    "url, clean",
    [
        (f"https://admin:{SECRET}@db.example.com/x", "https://***@db.example.com/x"),
        (f"http://u:{SECRET}@127.0.0.1:5000", "http://***@127.0.0.1:5000"),
        (f"postgres+psycopg://user:{SECRET}@host:5432/db", "postgres+psycopg://***@host:5432/db"),
        (f"see https://a:{SECRET}@h1/ and ftp://b:{SECRET}@h2/", "see https://***@h1/ and ftp://***@h2/"),
        ("https://db.example.com/x?user=me", "https://db.example.com/x?user=me"),
        ("https://db.example.com/@handle", "https://db.example.com/@handle"),
        ("mailto:someone@example.com", "mailto:someone@example.com"),
    ],
)
def test_credentials_are_stripped_from_urls(url, clean):
    assert redact(url) == clean
    assert redact({"endpoint_url": url}) == {"endpoint_url": clean}
    assert redact([url]) == [clean]


def test_a_password_containing_at_is_stripped_whole():
    out = redact(f"https://user:p@{SECRET}@db.example.com/")
    assert SECRET not in out


def test_a_token_as_url_user_name_is_stripped():
    assert SECRET not in redact(f"https://{SECRET}@github.com/org/repo.git")


@pytest.mark.parametrize("value", [1, 2.5, True, None, "plain text"])
def test_plain_values_pass_through(value):
    assert redact(value) == value


def test_redact_does_not_mutate_its_input():
    value = {"password": SECRET, "nested": [{"token": SECRET}]}
    redact(value)
    assert value == {"password": SECRET, "nested": [{"token": SECRET}]}


def test_the_log_file_never_contains_the_secret(log):
    log.append("connect", "web",
               password=SECRET,
               connection={"endpoint_url": f"https://admin:{SECRET}@r53.example.com", "profile": "p"},
               probes=[{"headers": {"Authorization": f"Bearer {SECRET}"}}],
               aws={"secret_access_key": SECRET, "access_key_id": "AKIDEXAMPLE"},
               token=SECRET)
    raw = log.path.read_bytes()
    assert SECRET.encode() not in raw
    (event,) = log.read()
    assert event["password"] == REDACTED and event["token"] == REDACTED
    assert event["connection"] == {"endpoint_url": "https://***@r53.example.com", "profile": "p"}
    assert event["aws"] == {"secret_access_key": REDACTED, "access_key_id": "AKIDEXAMPLE"}


def test_concurrent_appends_from_processes_never_interleave(tmp_path):
    import multiprocessing as mp

    path = tmp_path / "events.jsonl"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), f"w{i}", 50)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    events = EventLog(path).read()
    assert len(events) == 150
    assert all(len(e["pad"]) == 2000 for e in events)
    for i in range(3):
        assert [e["n"] for e in events if e["event"] == f"w{i}"] == list(range(50))


def _append_many(path: str, name: str, n: int) -> None:
    log = EventLog(path)
    for i in range(n):
        log.append(name, "web", n=i, pad="x" * 2000)


# --------------------------------------------------------------------------- redaction in linear time
# The regular expression redact used, kept as the reference for behaviour: quadratic in a long run of
# letters (16 KB of "a": 1.3 s; 48 KB: 13 s; 4 MiB: about a day, by the square).
_OLD_URL_CREDS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/?#\s]*@", re.I)


def _old_strip(text: str) -> str:
    return _OLD_URL_CREDS.sub(lambda m: m.group("scheme") + REDACTED + "@", text)


URLISH = "aZ19+.-:/@?# \tx"


@pytest.mark.parametrize("text", [
    "a://u@h", "a://b://u@h", "ab://cd://u:p@h/x", "1a://u@h", "1://u@h", "+a://u@h", "a1+.-://u@h",
    "x@y a://u@h", "a://u@h@i/j@k", "a://u@h a://v@i", "a://u@", "://u@h", "a:/u@h", "a://u/x@h",
    "a://u?x@h", "a://u#x@h", "a://u x@h", "a://@h", "a://u@h://v@i", "https://a:b@c@d/e",
])
def test_linear_redaction_matches_the_old_pattern(text):
    assert redact(text) == _old_strip(text)


def test_linear_redaction_matches_the_old_pattern_on_generated_text():
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    @hypothesis.settings(max_examples=2000, deadline=None, database=None)
    @hypothesis.given(st.text(alphabet=URLISH, max_size=40))
    def check(text: str) -> None:
        assert redact(text) == _old_strip(text)

    check()


MIB4 = 4 << 20
HUGE = {
    "letters": "a" * MIB4,
    "scheme-chars": "a1+.-" * (MIB4 // 5),
    "digits-then-scheme": "1" * MIB4 + "://u@h",
    "schemes": "a://" * (MIB4 // 4),
    "schemes-and-at": "a://@" * (MIB4 // 5),
    "at-heavy": "@" * MIB4,
    "scheme-then-at-heavy": "a://" + "@" * MIB4,
    "scheme-then-no-at": "a://" + "x" * MIB4 + "@",
    "letters-at": "a@" * (MIB4 // 2),
    "colons": "a:" * (MIB4 // 2) + "//u@h",
    "credentials": "https://user:pw@host/ " * (MIB4 // 22),
}


DENSE = {"schemes-and-at", "credentials"}  # a URL credential every 5 or 22 bytes: 838,000 or 190,000 to strip


@pytest.mark.parametrize("shape", list(HUGE))
def test_redaction_of_4_mib_is_fast(shape):
    """Measured on an idle machine of ours: 1-80 ms for every shape but the dense ones (a credential
    to strip every few bytes: schemes-and-at about 250 ms, credentials 110 ms, linear in what is
    stripped). The old pattern took 1.3 s for 16 KB of letters (a day for 4 MiB). The bounds allow a
    busy machine (best of two runs)."""
    import time

    text = HUGE[shape]
    best = float("inf")
    for _i in range(2):
        started = time.perf_counter()
        redact(text)
        best = min(best, time.perf_counter() - started)
    assert best < (1.5 if shape in DENSE else 0.5), (shape, best)


def test_a_4_mib_secret_looking_key_is_fast():
    import time

    started = time.perf_counter()
    assert redact({"x" * MIB4 + "token": "v", "y" * MIB4: "w"}) == {"x" * MIB4 + "token": REDACTED, "y" * MIB4: "w"}
    assert time.perf_counter() - started < 0.5


def test_redaction_of_4_mib_still_strips():
    out = redact("x" * MIB4 + f" https://u:{SECRET}@h/")
    assert SECRET not in out and out.endswith(" https://***@h/")
