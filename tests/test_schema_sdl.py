"""The committed SDL is the schema the code builds."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gql.cli import SCHEMA_FILE, app
from schema.build import sdl

COMMITTED = Path(__file__).resolve().parent.parent / "schema" / "schema.graphql"


def test_committed_sdl_is_up_to_date() -> None:
    assert SCHEMA_FILE == COMMITTED
    assert COMMITTED.read_text() == sdl(), (
        "schema/schema.graphql is out of date: run `treegate export-schema` and commit it"
    )


def test_sdl_ends_with_one_newline() -> None:
    text = sdl()
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    assert "type Query {" in text


def test_export_schema_check_passes_on_the_committed_file() -> None:
    result = CliRunner().invoke(app, ["export-schema", "--check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_export_schema_check_fails_on_a_modified_copy(tmp_path: Path) -> None:
    copy = tmp_path / "schema.graphql"
    copy.write_text(COMMITTED.read_text().replace("stateMachine", "stateMachin"))
    result = CliRunner().invoke(app, ["export-schema", "--check", "--output", str(copy)])
    assert result.exit_code == 1
    assert "out of date" in result.output
    assert "treegate export-schema" in result.output


def test_export_schema_check_fails_on_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.graphql"
    result = CliRunner().invoke(app, ["export-schema", "--check", "--output", str(missing)])
    assert result.exit_code == 1
    assert not missing.exists()


def test_export_schema_writes_the_sdl(tmp_path: Path) -> None:
    target = tmp_path / "out.graphql"
    result = CliRunner().invoke(app, ["export-schema", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text() == sdl()
    check = CliRunner().invoke(app, ["export-schema", "--check", "--output", str(target)])
    assert check.exit_code == 0
