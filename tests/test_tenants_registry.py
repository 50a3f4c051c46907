"""The tenants registry: identity is not a setting, unknown keys and bad values are refused in one
line (exit 2) before anything is touched, and `tenants check` tells which accounts a token reads."""

from __future__ import annotations

import os
import socket
import stat
import uuid

import pytest
import yaml
from meta_sandbox.testing import SandboxServer

from meta_elt import cli, secrets, tenants
from tests.support import ROOT

TENANT_A = "6a0f5c1e-2b7d-4c3a-9e1f-0d4b8a7c6e21"
TENANT_B = "9d3b7e42-5f18-4a6c-b0d2-7c1e9f4a3b58"


def _registry(tmp_path, settings=None, **extra) -> str:
    entry = {
        "id": TENANT_A,
        "name": "A",
        "token_env": "REG_TOKEN_A",
        "accounts": ["act_1"],
        **extra,
    }
    if settings is not None:
        entry["settings"] = settings
    path = tmp_path / "tenants.yml"
    path.write_text(yaml.safe_dump({"tenants": [entry]}))
    return str(path)


BAD_SETTINGS = [
    ({"tenant_id": TENANT_B}, "settings.tenant_id: identity and routing cannot be set"),
    ({"account_ids": ["act_2"]}, "settings.account_ids: identity and routing"),
    ({"access_token": "x"}, "settings.access_token: identity and routing"),
    ({"api_url": "http://evil"}, "settings.api_url: identity and routing"),
    ({"chunk_month": 3}, "settings.chunk_month: not a tap-facebook setting; did you mean"),
    ({"chunk_months": "abc"}, "settings.chunk_months: 'abc' is not a whole number"),
    ({"max_concurrent_jobs": -1}, "settings.max_concurrent_jobs: -1 is not a whole number"),
    ({"reports": "ad"}, "settings.reports: 'ad' is not a YAML list"),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "message"), BAD_SETTINGS)
def test_bad_settings_are_refused_with_one_line(tmp_path, settings, message):
    path = _registry(tmp_path, settings)
    with pytest.raises(tenants.RegistryError) as raised:
        tenants.load(tenants.Path(path), ROOT)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_good_settings_pass_through(tmp_path):
    path = _registry(tmp_path, {"chunk_months": 3, "poll_interval": 0.5, "reports": []})
    tenant = tenants.load(tenants.Path(path), ROOT)[TENANT_A]
    assert tenant.settings == {"chunk_months": 3, "poll_interval": 0.5, "reports": []}


BAD_FILES = [
    ("tenants:\n- id: [unclosed\n", "is not valid YAML at line 3"),
    (
        f"tenants:\n- id: {TENANT_A}\n  token_env: T\n  accounts: [act_1]\n"
        "  start_date: 2026-02-30\n",
        "cannot be read: day is out of range",
    ),
    (
        f"tenants:\n- id: {TENANT_A}\n  token_env: T\n  acounts: [act_1]\n",
        "did you mean 'accounts'",
    ),
    (
        f"tenants:\n- id: {TENANT_A}\n  token_env: T\n  accounts: [act_1]\n"
        "  settings: {tenant_id: " + TENANT_B + "}\n",
        "settings.tenant_id",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_a_bad_registry_exits_2_with_one_line_and_touches_nothing(
    tmp_path, monkeypatch, capsys, pg_server, text, message
):
    path = tmp_path / "tenants.yml"
    path.write_text(text)
    untouched = f"meta_elt_untouched_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("META_ELT_TENANTS", str(path))
    monkeypatch.setenv("PGDATABASE", untouched)
    for args in (["sync", "--all"], ["tenants", "check"]):
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert message in err
    with pg_server.connect(database="postgres") as conn:
        found = conn.execute("select 1 from pg_database where datname = %s", (untouched,))
        assert found.fetchone() is None, "nothing was created"


def test_token_broker_serves_the_token_over_a_private_socket_and_leaves_nothing():
    with secrets.TokenBroker("tok-123") as broker:
        mode = os.stat(broker.path).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        assert stat.S_IMODE(os.stat(broker.path.parent).st_mode) == 0o700
        for _ in range(2):  # discovery and the run each read it
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(str(broker.path))
                received = b"".join(iter(lambda: client.recv(64), b""))
            assert received == b"tok-123"
        directory = broker.path.parent
    assert not directory.exists()


def test_scrubbed_env_drops_every_tenants_token():
    env = {"META_TOKEN_A": "a", "META_TOKEN_B": "b", "TAP_FACEBOOK_ACCESS_TOKEN": "c", "PATH": "/"}
    assert secrets.scrubbed_env(env, {"META_TOKEN_A", "META_TOKEN_B"}) == {"PATH": "/"}


def test_tenants_check_names_unreadable_accounts_and_shared_ones(tmp_path, monkeypatch, capsys):
    world = {
        "seed": 3,
        "tokens": [
            {"token": "check-a", "accounts": ["act_700001", "act_700002"]},
            {"token": "check-b", "accounts": ["act_700002"]},
        ],
        "accounts": [
            {"id": a, "history_days": 5, "campaigns": 1, "adsets_per_campaign": 1,
             "ads_per_adset": 1}
            for a in ("act_700001", "act_700002", "act_700003")
        ],
    }  # fmt: skip
    path = tmp_path / "tenants.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "tenants": [
                    {"id": TENANT_A, "name": "Agency", "token_env": "CHECK_TOKEN_A",
                     "accounts": ["act_700001", "act_700002"]},
                    {"id": TENANT_B, "name": "Client", "token_env": "CHECK_TOKEN_B",
                     "accounts": ["act_700002", "act_700003"]},
                ]
            }
        )
    )  # fmt: skip
    monkeypatch.setenv("META_ELT_TENANTS", str(path))
    monkeypatch.setenv("CHECK_TOKEN_A", "check-a")
    monkeypatch.setenv("CHECK_TOKEN_B", "check-b")
    with SandboxServer(world=world) as sandbox:
        monkeypatch.setenv("TAP_FACEBOOK_API_URL", sandbox.base_url)
        assert cli.main(["tenants", "check"]) == 1
    err = capsys.readouterr().err
    lines = {line.split()[2]: line for line in err.splitlines() if line.startswith(TENANT_B)}
    assert "readable" in lines["act_700002"] and f"also under {TENANT_A}" in lines["act_700002"]
    assert "NOT READABLE" in lines["act_700003"]
    assert "act_700003 (CHECK_TOKEN_B)" in err.splitlines()[-1]
    assert "check-a" not in err and "check-b" not in err


def _two_tenants() -> dict[str, tenants.Tenant]:
    acme = tenants.Tenant("11111111-2222-4333-8444-555555555555", "Acme", "T_ACME", ("act_10001",))
    beta = tenants.Tenant("99999999-2222-4333-8444-555555555555", "Beta", "T_BETA", ("act_20002",))
    return {acme.id: acme, beta.id: beta}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("acme", "'acme' is the name of tenant 11111111-2222-4333-8444-555555555555, not its id"),
        ("11111111-2222-4333-8444-555555555556",
         "did you mean 11111111-2222-4333-8444-555555555555 (Acme)?"),
        ("not-a-uuid", "--tenant: 'not-a-uuid' is not a UUID"),
        ("00000000-0000-4000-8000-000000000000", "is not in the tenants registry; add it to"),
    ],
)  # fmt: skip
def test_a_tenant_is_found_by_id_and_a_miss_says_what_was_meant(given, message):
    registry = _two_tenants()
    assert tenants.find(registry, "11111111-2222-4333-8444-555555555555").name == "Acme"
    with pytest.raises(tenants.inputs.BadInput) as caught:
        tenants.find(registry, given)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("act_20002", "act_20002 belongs to tenant 99999999-2222-4333-8444-555555555555 (Beta), "
                      "not to 11111111-2222-4333-8444-555555555555 (Acme)"),
        ("act_10011", "act_10011 is not an account of tenant 11111111-2222-4333-8444-555555555555 "
                      "(Acme); did you mean act_10001?"),
        ("act_777", "use one of act_10001, or add it"),
    ],
)  # fmt: skip
def test_an_account_of_another_tenant_or_a_near_miss_is_named(given, message):
    registry = _two_tenants()
    acme = registry["11111111-2222-4333-8444-555555555555"]
    assert tenants.account_of(registry, acme, "act_10001") == "act_10001"
    with pytest.raises(tenants.inputs.BadInput) as caught:
        tenants.account_of(registry, acme, given)
    assert message in str(caught.value)
