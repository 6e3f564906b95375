"""Entra's AADSTS error codes, each translated into what an administrator has to change."""

from __future__ import annotations

import re
from typing import Final

_CODE: Final = re.compile(r"AADSTS(\d+)")
_SECRETS: Final = "Entra admin center → App registrations → the app → Certificates & secrets"

#: AADSTS code → the fix, naming the config key or the place in the Entra admin center.
FIXES: Final[dict[int, str]] = {
    700016: (
        "no app with this entra.client_id is registered in the tenant entra.tenant_id: copy "
        "the Application (client) ID and the Directory (tenant) ID from the app's Overview page"
    ),
    7000215: (
        "entra.client_secret is not a valid secret of the app: use the secret's Value (not its "
        f"Secret ID), or create a new one ({_SECRETS})"
    ),
    7000222: (
        f"the client secret has expired: create a new one ({_SECRETS}) and put it in "
        "entra.client_secret"
    ),
    90002: (
        "the tenant entra.tenant_id does not exist: copy the Directory (tenant) ID from the "
        "app's Overview page (or check entra.authority_host for a sovereign cloud)"
    ),
    900023: (
        "entra.tenant_id is not a valid tenant id or domain: copy the Directory (tenant) ID "
        "from the app's Overview page"
    ),
    700027: (
        "the certificate in entra.certificate_path is not registered for the app (or has "
        f"expired): upload its public part ({_SECRETS}) or point to the right file"
    ),
    50034: ("the account does not exist in this tenant: check entra.tenant_id and entra.client_id"),
    7000112: (
        "the application is disabled in this tenant: Entra admin center → Enterprise "
        "applications → the app → Properties → Enabled for users to sign in: Yes"
    ),
    65001: (
        "admin consent is missing: Entra admin center → App registrations → the app → "
        "API permissions → Grant admin consent"
    ),
}


def aadsts_code(text: str) -> int | None:
    """The first AADSTS code in an Entra error text, or ``None``."""
    found = _CODE.search(text)
    return int(found.group(1)) if found else None


def fix_for(text: str) -> str | None:
    """The fix for the AADSTS code in ``text``, or ``None`` for an unknown or absent code."""
    code = aadsts_code(text)
    return FIXES.get(code) if code is not None else None
