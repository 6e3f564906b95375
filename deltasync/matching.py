"""Matching on first sight: which existing ELIZA account, if any, an unlinked Entra user is.

Pure: the engine fetches the candidates, this module decides. The rules follow Entra
Connect's hard and soft match, with its two safety switches and its refusal to take over
administrator accounts; two candidates are a conflict, never "the first".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deltasync.mapping import primary_smtp
from deltasync.models import MatchedBy


class Outcome(enum.StrEnum):
    """What matching decided for an unlinked Entra user."""

    MATCH = "match"  # link to the found ELIZA object
    CREATE = "create"  # nothing found: create it
    CONFLICT = "conflict"  # ambiguous or off limits: neither, a person decides


@dataclass(frozen=True)
class MatchSettings:
    """The ``matching`` section of the config."""

    hard_match: bool = True
    soft_match: bool = True
    protected_groups: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Match:
    """The outcome: link to ``target`` (matched_by says how), create, or a conflict."""

    outcome: Outcome
    target: Mapping[str, Any] | None = None
    matched_by: MatchedBy | None = None
    reason: str | None = None
    candidates: tuple[Mapping[str, Any], ...] = ()


def soft_keys(data: Mapping[str, Any]) -> dict[str, str]:
    """The soft-match attributes of an Entra user, lower-cased: username, email, proxy."""
    keys: dict[str, str] = {}
    upn = data.get("userPrincipalName")
    if isinstance(upn, str) and upn:
        keys["username"] = upn.lower()
    mail = data.get("mail")
    if isinstance(mail, str) and mail:
        keys["email"] = mail.lower()
    proxies = data.get("proxyAddresses")
    smtp = primary_smtp(proxies) if isinstance(proxies, list) else None
    if smtp:
        keys["proxy"] = smtp.lower()
    return keys


def protection(user: Mapping[str, Any], protected_groups: Iterable[int]) -> str | None:
    """Why an ELIZA user may never be matched or changed, or None."""
    if user.get("is_superuser"):
        return "is a superuser"
    groups = set(user.get("groups") or ())
    hit = sorted(groups & set(protected_groups))
    if hit:
        return f"is in protected group {hit[0]}"
    return None


def _describe(user: Mapping[str, Any]) -> dict[str, Any]:
    return {k: user.get(k) for k in ("id", "username", "email", "remote_key", "is_superuser")}


def decide_user(
    entra_id: str,
    by_remote_key: Sequence[Mapping[str, Any]],
    soft: Mapping[str, Sequence[Mapping[str, Any]]],
    settings: MatchSettings,
    linked_elsewhere: Mapping[int, str],
    *,
    own_create_pending: bool = False,
) -> Match:
    """Decide how an unlinked Entra user meets ELIZA.

    Args:
        entra_id: the Entra object id (the ``remote_key`` the sync writes).
        by_remote_key: ELIZA users whose remote_key equals entra_id.
        soft: candidates per soft attribute ("username", "email", "proxy").
        settings: the matching switches.
        linked_elsewhere: ELIZA user id -> Entra id, for accounts already linked to another object.
        own_create_pending: the journal shows this sync started creating the object before
            (a create whose response was lost): a remote_key hit is then our own object even
            when hard matching is switched off.
    """
    if len(by_remote_key) > 1:
        return Match(
            Outcome.CONFLICT,
            reason="several ELIZA users hold this remote_key",
            candidates=tuple(_describe(u) for u in by_remote_key),
        )
    if by_remote_key:
        user = by_remote_key[0]
        if not (settings.hard_match or own_create_pending):
            return Match(
                Outcome.CONFLICT,
                reason="an ELIZA user holds this remote_key but matching.hard_match is off",
                candidates=(_describe(user),),
            )
        why = protection(user, settings.protected_groups)
        if why:
            return Match(
                Outcome.CONFLICT,
                reason=f"the ELIZA user with this remote_key {why}",
                candidates=(_describe(user),),
            )
        return Match(
            Outcome.MATCH, user, MatchedBy.CREATED if own_create_pending else MatchedBy.HARD
        )
    if not settings.soft_match:
        return Match(Outcome.CREATE)
    found: dict[int, tuple[Mapping[str, Any], list[str]]] = {}
    for attribute in ("username", "email", "proxy"):
        for user in soft.get(attribute, ()):
            entry = found.setdefault(int(user["id"]), (user, []))
            entry[1].append(attribute)
    if not found:
        return Match(Outcome.CREATE)
    if len(found) > 1:
        return Match(
            Outcome.CONFLICT,
            reason="soft match found several ELIZA users: "
            + ", ".join(
                f"#{uid} by {'/'.join(attrs)}" for uid, (_, attrs) in sorted(found.items())
            ),
            candidates=tuple(_describe(u) for u, _ in found.values()),
        )
    user, attributes = next(iter(found.values()))
    why = protection(user, settings.protected_groups)
    if why:
        return Match(
            Outcome.CONFLICT, reason=f"the matching ELIZA user {why}", candidates=(_describe(user),)
        )
    other = user.get("remote_key")
    if other and other != entra_id:
        return Match(
            Outcome.CONFLICT,
            reason=f"the matching ELIZA user already holds remote_key {other}",
            candidates=(_describe(user),),
        )
    owner = linked_elsewhere.get(int(user["id"]))
    if owner and owner != entra_id:
        return Match(
            Outcome.CONFLICT,
            reason=f"the matching ELIZA user is linked to Entra object {owner}",
            candidates=(_describe(user),),
        )
    return Match(Outcome.MATCH, user, MatchedBy.soft(attributes))


def decide_person(
    entra_id: str,
    by_remote_key: Sequence[Mapping[str, Any]],
    by_user: Sequence[Mapping[str, Any]],
    by_email: Sequence[Mapping[str, Any]],
    settings: MatchSettings,
    linked_elsewhere: Mapping[int, str],
    *,
    own_create_pending: bool = False,
    user_id: int | None = None,
) -> Match:
    """Decide how an unlinked Entra user's person meets ELIZA: remote_key, then user, then email.

    ``user_id`` is the ELIZA user linked to this Entra user: a person found by email that
    belongs to a different account is a conflict, never re-assigned.
    """
    if len(by_remote_key) > 1:
        return Match(
            Outcome.CONFLICT,
            reason="several ELIZA persons hold this remote_key",
            candidates=tuple(by_remote_key),
        )
    if by_remote_key:
        if not (settings.hard_match or own_create_pending):
            return Match(
                Outcome.CONFLICT,
                reason="an ELIZA person holds this remote_key but matching.hard_match is off",
                candidates=tuple(by_remote_key),
            )
        how = MatchedBy.CREATED if own_create_pending else MatchedBy.HARD
        return Match(Outcome.MATCH, by_remote_key[0], how)
    for attribute, people in (("user", by_user), ("email", by_email)):
        if attribute == "email" and not settings.soft_match:
            break
        if len(people) > 1:
            return Match(
                Outcome.CONFLICT,
                reason=f"several ELIZA persons match by {attribute}",
                candidates=tuple(people),
            )
        if people:
            person = people[0]
            other = person.get("remote_key")
            if other and other != entra_id:
                return Match(
                    Outcome.CONFLICT,
                    reason=f"the matching ELIZA person already holds remote_key {other}",
                    candidates=(person,),
                )
            account = person.get("user")
            if attribute == "email" and account is not None and account != user_id:
                return Match(
                    Outcome.CONFLICT,
                    reason=f"the matching ELIZA person belongs to another user (#{account})",
                    candidates=(person,),
                )
            owner = linked_elsewhere.get(int(person["id"]))
            if owner and owner != entra_id:
                return Match(
                    Outcome.CONFLICT,
                    reason=f"the matching ELIZA person is linked to Entra object {owner}",
                    candidates=(person,),
                )
            how = MatchedBy.soft([attribute]) if attribute == "email" else MatchedBy.USER
            return Match(Outcome.MATCH, person, how)
    return Match(Outcome.CREATE)


# After the adoption (see deltasync.engine.adoption); here so that `state` needs no engine.
#: The meta key set once the recommendation was given.
SOFT_MATCH_HINT = "soft_match_hint_given"

RECOMMENDATION = (
    "every in-scope Entra user is linked to its ELIZA account and matching.soft_match is "
    "still true: set matching.soft_match: false, so a new Entra user can never take over an "
    "unlinked ELIZA account by its username or e-mail (as Entra Connect's "
    "BlockSoftMatchEnabled)"
)
