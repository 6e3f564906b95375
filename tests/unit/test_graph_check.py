"""The pure parts of the Graph side of ``check``: AADSTS fixes, roles, needed permissions."""

from __future__ import annotations

import base64
import json

import pytest

from deltasync.graph.aadsts import FIXES, aadsts_code, fix_for
from deltasync.graph.check import missing_permissions
from deltasync.graph.transport import roles_of


def jwt(payload: object) -> str:
    def part(data: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(payload)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (700016, "Application (client) ID"),
        (7000215, "Value (not its Secret ID)"),
        (7000222, "expired"),
        (90002, "Directory (tenant) ID"),
        (900023, "tenant id"),
        (700027, "certificate"),
        (50034, "entra.tenant_id"),
        (7000112, "disabled"),
        (65001, "Grant admin consent"),
    ],
)
def test_each_aadsts_code_has_its_fix(code: int, words: str) -> None:
    text = f"AADSTS{code}: something went wrong. Trace ID: 1234"

    assert aadsts_code(text) == code
    fix = fix_for(text)
    assert fix is not None
    assert words in fix
    assert code in FIXES


def test_an_unknown_or_absent_code_has_no_fix() -> None:
    assert fix_for("AADSTS1: unheard of") is None
    assert fix_for("connection refused") is None
    assert aadsts_code("no code") is None


def test_roles_are_read_from_the_token_without_verification() -> None:
    token = jwt({"aud": "https://graph.microsoft.com", "roles": ["User.Read.All", "A.B"]})

    assert roles_of(token) == ("A.B", "User.Read.All")


@pytest.mark.parametrize(
    "token",
    ["opaque", "a.b", "a.!!!.c", jwt({"aud": "x"}), jwt({"roles": "User.Read.All"}), jwt([1])],
)
def test_a_token_without_readable_roles_has_none(token: str) -> None:
    assert roles_of(token) == ()


@pytest.mark.parametrize(
    ("roles", "sync_groups", "missing"),
    [
        (["User.Read.All"], False, []),
        (["User.Read.All"], True, ["GroupMember.Read.All"]),
        (["User.Read.All", "GroupMember.Read.All"], True, []),
        (["User.Read.All", "Group.Read.All"], True, []),
        (["Directory.Read.All"], True, []),
        (["User.ReadWrite.All"], False, []),
        (["user.read.all"], False, []),
        ([], False, ["User.Read.All"]),
        (["Mail.Read"], True, ["User.Read.All", "GroupMember.Read.All"]),
    ],
)
def test_missing_permissions(roles: list[str], sync_groups: bool, missing: list[str]) -> None:
    assert missing_permissions(roles, sync_groups=sync_groups) == missing
