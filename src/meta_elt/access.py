"""`meta-elt tenants check`: which of its listed ad accounts each tenant's token can read.

One Graph API read per tenant and account (``GET /<version>/act_<id>?fields=name``, the token in
an Authorization header), so a revoked permission or a wrong account shows up before a backfill
fails on it. The API URL and version are the tap's (``TAP_FACEBOOK_API_URL`` /
``TAP_FACEBOOK_API_VERSION``, defaults from extract/extractors.meltano.yml).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from meta_elt.tenants import Tenant, tap_settings

TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class Access:
    tenant: Tenant
    account: str
    readable: bool
    detail: str  # the account's name, or why it cannot be read


class ApiUnreachable(RuntimeError):
    """The Graph API does not answer (one line)."""


def api_base(root: Path) -> str:
    """``<api_url>/<api_version>`` from the environment, else the extractor's declared defaults."""
    defaults = {s["name"]: s.get("value") for s in tap_settings(root)}
    url = os.environ.get("TAP_FACEBOOK_API_URL") or str(defaults["api_url"])
    version = os.environ.get("TAP_FACEBOOK_API_VERSION") or str(defaults["api_version"])
    return f"{url.rstrip('/')}/{version}"


def _graph_error(body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
        code = error.get("code")
        subcode = error.get("error_subcode")
        codes = f"code {code}" + (f"/{subcode}" if subcode else "")
        return f"{error.get('message', 'error')} ({codes})"
    except (ValueError, KeyError, TypeError, AttributeError):
        return body[:200].decode(errors="replace")


def read_account(base: str, token: str, account: str) -> tuple[bool, str]:
    """(readable, account name or Meta's reason)."""
    query = urllib.parse.urlencode({"fields": "name,account_status"})
    request = urllib.request.Request(
        f"{base}/{account}?{query}", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return True, str(json.loads(response.read()).get("name") or account)
    except urllib.error.HTTPError as exc:
        return False, _graph_error(exc.read())
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiUnreachable(
            f"the Graph API at {base} does not answer ({reason}); check TAP_FACEBOOK_API_URL "
            "and the network"
        ) from None


def check_accounts(tenant: Tenant, accounts: list[str], base: str) -> list[Access]:
    """Whether the tenant's token reads each of ``accounts``."""
    token = tenant.token()
    if not token:
        return [Access(tenant, a, False, f"no token: export {tenant.token_env}") for a in accounts]
    return [Access(tenant, a, *read_account(base, token, a)) for a in accounts]


def check(tenants: list[Tenant], base: str) -> list[Access]:
    """Whether each tenant's token reads each of its accounts."""
    return [result for t in tenants for result in check_accounts(t, list(t.accounts), base)]
