"""Failures on our side are one line with libpq's real cause and the fix; exit 1."""

from __future__ import annotations

import uuid

from meta_elt import cli, postgres


def _run(monkeypatch, capsys, args: list[str], **env: str) -> tuple[int, list[str]]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = cli.main(args)
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_role_that_does_not_exist_is_named(monkeypatch, capsys, pg_server: postgres.Server):
    code, lines = _run(
        monkeypatch, capsys, ["migrate"],
        PGHOST=pg_server.host, PGPORT=str(pg_server.port), PGUSER="no_such_role_x",
    )  # fmt: skip
    assert code == 1 and len(lines) == 1, lines
    assert 'role "no_such_role_x" does not exist' in lines[0]
    assert "PGUSER" in lines[0]


def test_a_user_without_createdb_is_told_what_to_grant(
    monkeypatch, capsys, pg_server: postgres.Server
):
    role = f"meta_elt_nocreate_{uuid.uuid4().hex[:6]}"
    with pg_server.connect(database="postgres", autocommit=True) as conn:
        conn.execute(f"create role {role} login")
    try:
        code, lines = _run(
            monkeypatch, capsys, ["migrate"],
            PGHOST=pg_server.host, PGPORT=str(pg_server.port), PGUSER=role,
            PGDATABASE=f"meta_elt_missing_{uuid.uuid4().hex[:6]}",
        )  # fmt: skip
    finally:
        with pg_server.connect(database="postgres", autocommit=True) as conn:
            conn.execute(f"drop role {role}")
    assert code == 1 and len(lines) == 1, lines
    assert "permission denied to create database" in lines[-1]
    assert "CREATEDB" in lines[-1]
