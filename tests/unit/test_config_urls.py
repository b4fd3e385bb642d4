"""DatabaseUrl.parse refuses what libpq and Python would read differently; redact() hides every
password this process has parsed, wherever a driver's message quotes it."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from columnar_etl import config
from columnar_etl.config import DatabaseUrl, RunConfig, first_line, hide_known_secrets, redact
from columnar_etl.errors import ConfigError


@pytest.fixture(autouse=True)
def no_known_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from a process that has parsed no URL."""
    monkeypatch.setattr(config, "_secrets", ())


@pytest.mark.parametrize(
    ("userinfo", "encoded"),
    [
        ("u:hunter2%pw", "%25"),
        ("u:hunter2%4", "%25"),
        ("u:hunt@er2pw", "%40"),
        ("u:hunter2/x@y", "%2F"),
        ("u:hunter2 pw", "%20"),
        ("u\t:hunter2", "%20"),  # urlsplit drops the tab, libpq does not
    ],
)
def test_userinfo_libpq_reads_otherwise_is_refused_without_showing_it(
    userinfo: str, encoded: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        DatabaseUrl.parse(f"postgresql://{userinfo}@127.0.0.1:5432/db", what="target")
    message = str(refused.value)
    assert "percent-encode" in message and encoded in message
    assert "hunter2" not in message and "er2pw" not in message


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://u:hunter2@[::1/db", "malformed host"),
        ("postgresql://u:hunter2:x@[::1/db", "malformed host"),
        ("postgresql://u:hunter2@127.0.0.1:0/db", "invalid port"),
    ],
)
def test_bad_host_or_port_is_a_config_error(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as refused:
        DatabaseUrl.parse(url, what="target")
    assert "hunter2" not in str(refused.value)


def test_redact_hides_a_parsed_password_anywhere_as_written_and_decoded() -> None:
    url = DatabaseUrl.parse("postgresql://u:s3cr%3At@127.0.0.1:5432/db", what="t")
    assert str(url) == "postgresql://u:***@127.0.0.1:5432/db"
    quoted = 'invalid token "s3cr%3At"; decoded "s3cr:t"; again s3cr:t'
    assert hide_known_secrets(quoted) == 'invalid token "***"; decoded "***"; again ***'


def test_redact_hides_a_parsed_query_password() -> None:
    DatabaseUrl.parse("postgresql://127.0.0.1:5432/db?password=hunter2%20pw", what="t")
    shown = hide_known_secrets('unexpected spaces found in "hunter2 pw"')
    assert shown == 'unexpected spaces found in "***"'


def test_redact_leaves_short_passwords_and_one_equal_to_the_user_name_to_the_url_rules() -> None:
    for url in (
        "postgresql://etl:etl@127.0.0.1:5432/db",
        "postgresql://postgres:postgres@127.0.0.1:5432/postgres",
        "postgresql://u:pw1@127.0.0.1:5432/db",
        "postgresql://u:hunter2@127.0.0.1:5432/db",
    ):
        DatabaseUrl.parse(url, what="t")
    text = "etl --target postgresql://postgres:postgres@h/postgres: pw1 or hunter2 was wrong"
    shown = hide_known_secrets(text)
    assert shown == "etl --target postgresql://postgres:***@h/postgres: pw1 or *** was wrong"


def test_an_unpickled_url_teaches_its_process_the_password() -> None:
    """A Ray worker gets its URLs by pickle, never through parse()."""
    data = pickle.dumps(DatabaseUrl.parse("postgresql://u:hunter2pw@127.0.0.1:5432/db", what="t"))
    config._secrets = ()
    pickle.loads(data)
    assert hide_known_secrets("hunter2pw") == "***"


def test_query_password_redaction_keeps_the_message_punctuation() -> None:
    shown = redact("target postgresql://h:1/d?password=hunter2: IO: refused")
    assert shown.endswith("?password=***: IO: refused")
    assert redact("postgresql://h:1/d?sslmode=require&password=a:b&x=1 up").endswith(
        "&password=***&x=1 up"
    )
    assert redact("postgresql://h:1/d?password=hunter2").endswith("?password=***")


def test_a_raw_at_sign_in_unparsed_text_is_hidden_up_to_the_last_at_sign() -> None:
    assert redact("url postgresql://u:hunt@er2pw@h:1/db: failed") == (
        "url postgresql://u:***@h:1/db: failed"
    )


@pytest.mark.parametrize("slashes", ["///", "////", "/////"])
def test_an_absolute_sqlite_path_is_the_same_url_however_many_slashes(slashes: str) -> None:
    """SQLAlchemy spells an absolute path sqlite:////x; a job's recorded source must compare
    equal to the same file given either way."""
    url = DatabaseUrl.parse(f"sqlite:{slashes}tmp/legacy.db", what="source")
    assert url.url == "sqlite:///tmp/legacy.db" and url.path == Path("/tmp/legacy.db")


def test_a_password_that_is_a_word_is_hidden_in_driver_text_only() -> None:
    """Known passwords are hidden in what drivers say, not in our own text: a target password
    "orders" must not blank the source path or a message naming the orders table."""
    target = DatabaseUrl.parse("postgresql://etl:orders@127.0.0.1:5432/app", what="t")
    source = DatabaseUrl.parse("sqlite:///srv/orders/legacy.db", what="s")
    assert str(source) == "sqlite:///srv/orders/legacy.db"
    assert RunConfig(source=source, target=target).describe()["source"] == str(source)
    assert redact("interrupted: orders job 3 stopped") == "interrupted: orders job 3 stopped"
    assert first_line(RuntimeError('password "orders" is wrong')) == 'password "***" is wrong'


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://etl:hunter2 pw@127.0.0.1:5432/db",
        "mssql://etl:hunter2pw@127.0.0.1/db",
        "etl:hunter2pw@127.0.0.1/db",
    ],
)
def test_an_unknown_url_is_refused_without_showing_it(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        DatabaseUrl.parse(url, what="target")
    assert "hunter2" not in str(refused.value) and "must start with" in str(refused.value)


@pytest.mark.parametrize("char", ["#", "?"])
def test_a_raw_hash_or_question_mark_in_a_password_says_to_percent_encode(char: str) -> None:
    with pytest.raises(ConfigError, match="percent-encode") as refused:
        DatabaseUrl.parse(f"postgresql://etl:ab{char}hunter2pw@127.0.0.1:5432/db", what="t")
    assert "hunter2" not in str(refused.value)


def test_the_scheme_is_read_in_any_case() -> None:
    url = DatabaseUrl.parse("POSTGRESQL://etl:hunter2pw@127.0.0.1:5432/db", what="t")
    assert url.url == "postgresql://etl:hunter2pw@127.0.0.1:5432/db"


#: What every PostgreSQL source session is asked for, before its lock timeout.
TEXT = (
    "-c%20DateStyle%3DISO%20-c%20IntervalStyle%3Dpostgres%20-c%20extra_float_digits%3D1"
    "%20-c%20bytea_output%3Dhex"
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://u:pw@h:5/db",
            f"postgresql://u:pw@h:5/db?options={TEXT}%20-c%20lock_timeout%3D1500",
        ),
        (
            "postgresql://u:pw@h:5/db?sslmode=disable",
            f"postgresql://u:pw@h:5/db?sslmode=disable&options={TEXT}%20-c%20lock_timeout%3D1500",
        ),
        (
            "postgresql://u:pw@h:5/db?options=-c%20search_path%3Dx",
            f"postgresql://u:pw@h:5/db?options=-c%20search_path%3Dx%20{TEXT}"
            "%20-c%20lock_timeout%3D1500",
        ),
    ],
)
def test_settings_and_a_lock_timeout_travel_as_startup_options_added_to_any_given(
    url: str, expected: str
) -> None:
    assert DatabaseUrl.parse(url, what="source").driver_url(1.5) == expected


def test_no_lock_timeout_option_for_zero_nor_any_option_for_sqlite() -> None:
    assert DatabaseUrl.parse("postgresql://u@h:5/db", what="s").driver_url(0) == (
        f"postgresql://u@h:5/db?options={TEXT}"
    )
    assert DatabaseUrl.parse("sqlite:///x.db", what="s").driver_url(3).endswith("/x.db")


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), 86_401])
def test_a_lock_timeout_out_of_range_is_a_config_error(value: float) -> None:
    url = DatabaseUrl.parse("sqlite:///x.db", what="s")
    with pytest.raises(ConfigError, match="lock-timeout must be 0"):
        RunConfig(source=url, target=url, lock_timeout=value)


@pytest.mark.parametrize("scheme", ["mysql", "mariadb", "MySQL"])
def test_mysql_and_mariadb_are_a_source_with_its_password_hidden(scheme: str) -> None:
    url = DatabaseUrl.parse(f"{scheme}://etl:hunter2pw@127.0.0.1:3306/shop", what="s", source=True)
    assert (url.dialect, url.url) == ("mysql", "mysql://etl:hunter2pw@127.0.0.1:3306/shop")
    assert str(url) == "mysql://etl:***@127.0.0.1:3306/shop" and "hunter2" not in repr(url)
    assert hide_known_secrets("Access denied (using password hunter2pw)") == (
        "Access denied (using password ***)"
    )


def test_mysql_is_refused_as_a_target_in_one_line_without_its_password() -> None:
    with pytest.raises(ConfigError) as refused:
        DatabaseUrl.parse("mariadb://etl:hunter2pw@127.0.0.1:3306/shop", what="target")
    message = str(refused.value)
    assert "can only be a source" in message and "hunter2" not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://etl:hunter2pw@127.0.0.1:3306/", "must look like mysql://"),
        ("mysql://etl:hunt@er2pw@127.0.0.1:3306/db", "percent-encode"),
        ("mysql://etl:hunter2pw@127.0.0.1:0/db", "invalid port"),
    ],
)
def test_a_malformed_mysql_url_is_refused_without_its_password(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as refused:
        DatabaseUrl.parse(url, what="source", source=True)
    assert "hunter2" not in str(refused.value)


def test_a_statement_quoted_in_a_driver_error_gives_way_to_the_servers_words() -> None:
    said = (
        "INVALID_DATA: [libpq] Failed to execute query 'CREATE TABLE IF NOT EXISTS misc (\n"
        "  c0 char(0)\n)': ERROR:  length for type char must be at least 1\n"
        "LINE 2:   c0 char(0)\n           ^\n. SQLSTATE: 22023"
    )
    assert first_line(RuntimeError(said)) == (
        "INVALID_DATA: [libpq] Failed to execute query: ERROR:  length for type char must be "
        "at least 1"
    )
    plain = "INVALID_DATA: [libpq] Failed to execute query: could not begin COPY: ERROR:  x\n"
    assert first_line(RuntimeError(plain)) == plain.strip()
