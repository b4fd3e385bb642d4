"""The .env parser: python-dotenv's common subset, and one clear line for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from columnar_etl.envfile import load_env_file, parse_env
from columnar_etl.errors import ConfigError


def test_entries_comments_quotes_and_export() -> None:
    text = "\n".join(
        [
            "# migration.env",
            "",
            "LEGACY_DATABASE_URL=postgresql://u:p@h:5432/legacy_db",
            "  export MAX_RETRIES = 3  ",
            "LOG_LEVEL=INFO # a comment",
            "HASH=a#b",
            "SINGLE='keeps \\n and # as written'",
            'DOUBLE="tab\\"quote\\\\ and\\nnewline" # comment',
            "EMPTY=",
        ]
    )
    assert dict(parse_env(text)) == {
        "LEGACY_DATABASE_URL": "postgresql://u:p@h:5432/legacy_db",
        "MAX_RETRIES": "3",
        "LOG_LEVEL": "INFO",
        "HASH": "a#b",
        "SINGLE": "keeps \\n and # as written",
        "DOUBLE": 'tab"quote\\ and\nnewline',
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("A=1\nnot an entry", "line 2: expected NAME=VALUE"),
        ("1A=1", "line 1: expected NAME=VALUE"),
        ("A='open", "line 1: A's value opens a quote"),
        ('A="open\\"', "line 1: A's value opens a quote"),
        ('A="x" trailing', "line 1: A's value opens a quote"),
    ],
)
def test_a_malformed_line_names_the_file_and_line_not_its_text(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as raised:
        list(parse_env(text + " s3cret-Pa55", "/w/.env"))
    assert str(raised.value).startswith(f"/w/.env {why}")
    assert "s3cret" not in str(raised.value)


def test_the_environment_wins_and_no_file_sets_nothing(tmp_path: Path) -> None:
    env = {"MAX_RETRIES": "5", "LOG_LEVEL": ""}
    assert load_env_file(env, tmp_path / ".env") == {}
    (tmp_path / ".env").write_text("MAX_RETRIES=1\nLOG_LEVEL=INFO\nMIGRATION_BATCH_SIZE=10\n")
    assert load_env_file(env, tmp_path / ".env") == {"MIGRATION_BATCH_SIZE": "10"}
    assert env == {"MAX_RETRIES": "5", "LOG_LEVEL": "", "MIGRATION_BATCH_SIZE": "10"}


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()
    with pytest.raises(ConfigError, match=r"^cannot read .*\.env: "):
        load_env_file({}, tmp_path / ".env")
