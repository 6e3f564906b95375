"""Which Entra users the sync manages, and what leaving the scope does to them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from deltasync.models import MirrorObject
from deltasync.plan.reasons import removed_words


class Predicate(Protocol):
    """A compiled scope filter (see deltasync.filter.Filter)."""

    @property
    def source(self) -> str: ...

    @property
    def properties(self) -> frozenset[str]: ...

    def matches(self, data: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True)
class Scope:
    """Which Entra users the sync manages."""

    user_filter: Predicate | None = None
    excluded_domains: tuple[str, ...] = ()
    excluded_users: tuple[str, ...] = ()


def label(obj: MirrorObject) -> str:
    """The UPN, or the Entra id when there is none: how people recognise the object."""
    upn = obj.data.get("userPrincipalName")
    return upn if isinstance(upn, str) and upn else obj.id


def scope_status(obj: MirrorObject, scope: Scope) -> tuple[str, str | None]:
    """Classify an object: ("active", None) or (status, policy) with policy "disable"/"delete".

    Removal wins over disabling, disabling over the other scope rules, so the administrator
    sees the strongest reason and the matching deprovisioning policy applies.
    """
    if obj.removed is not None:
        return removed_words(obj.removed), "delete"
    data = obj.data
    if data.get("accountEnabled") is False:
        return "disabled", "disable"
    upn = str(data.get("userPrincipalName") or "").lower()
    mail = str(data.get("mail") or "").lower()
    excluded = {u.lower() for u in scope.excluded_users}
    if upn in excluded or (mail and mail in excluded):
        return "out of scope: excluded_users", "disable"
    domains = {d.lower().lstrip("@") for d in scope.excluded_domains}
    for address in (upn, mail):
        if "@" in address and address.rsplit("@", 1)[1] in domains:
            return "out of scope: excluded_domains", "disable"
    if scope.user_filter is not None and not scope.user_filter.matches(data):
        return "out of scope: user_filter", "disable"
    return "active", None
