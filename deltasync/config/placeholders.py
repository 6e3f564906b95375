"""Values left over from the example config or the seed tool's documentation: they load (the
seed config must load unchanged), and ``deltasync check`` reports them."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

from deltasync.config.model import Config

_ZERO_GUID: Final = re.compile(r"0{8}-0{4}-0{4}-0{4}-0{12}\Z")
# "deine-tenant-id", "dein-client-secret", "your-tenant-id", "<tenant-id>", "xxxx"
_WORDS: Final = re.compile(r"(deine?|your|ihre?)[-_ ]|<[^>]*>\Z|x{4,}\Z|\.\.\.\Z", re.IGNORECASE)
_EXAMPLE_HOSTS: Final = frozenset({"firma.myeliza.ch", "example.com", "example.org"})


def placeholders(config: Config) -> list[str]:
    """Each key still holding a placeholder value, with why (a secret is never shown)."""
    found: list[str] = []
    entra = config.entra
    for key, value in (
        ("entra.tenant_id", entra.tenant_id),
        ("entra.client_id", entra.client_id),
        ("entra.managed_identity_client_id", entra.managed_identity_client_id),
    ):
        if value is None:
            continue
        if _ZERO_GUID.match(value):
            found.append(f"{key}: the all-zero GUID of the example config; put your own here")
        elif _WORDS.match(value):
            found.append(f"{key}: {value!r} is a placeholder; put your own here")
    for key, secret in (
        ("entra.client_secret", entra.client_secret),
        ("entra.certificate_password", entra.certificate_password),
        ("eliza.api_token", config.eliza.api_token),
    ):
        if secret is not None and _WORDS.match(secret.reveal()):
            found.append(f"{key}: looks like a placeholder, not a real secret")
    host = (urlsplit(config.eliza.base_url).hostname or "").lower()
    if host in _EXAMPLE_HOSTS:
        found.append(
            f"eliza.base_url: {host} is the example instance; put your ELIZA instance's address"
        )
    return found
