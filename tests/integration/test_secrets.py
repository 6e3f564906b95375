"""Secrets (client secret, API token, access tokens) never reach output, logs or the state DB."""

from __future__ import annotations

import logging

import pytest

from deltasync.cli import run_cli
from deltasync.sandbox.server import Sandbox

pytestmark = pytest.mark.sandbox(users=20, seed=11, page_size=8)


def secrets_of(sandbox: Sandbox) -> list[str]:
    return [*sandbox.env.values(), *sandbox.tokens.issued]


def test_no_secret_in_output_logs_reports_or_state_database(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)  # every library's debug logging, httpx and azure included
    config = str(sandbox.config_path)
    sandbox.eliza.fail_next(
        method="PATCH", status=400, body={"position": ["Ungültiger Wert."]}, n=1
    )
    assert run_cli(["sync", "-c", config, "-v"]) == 0
    (user,) = [u for u in sandbox.graph.users() if u.get("accountEnabled")][:1]
    sandbox.graph.update_user(user["id"], jobTitle="Neu")
    run_cli(["sync", "-c", config, "--json", "-v"])
    run_cli(["sync", "-c", config, "--dry-run"])
    for command in (
        ["state"],
        ["state", "runs"],
        ["state", "failures"],
        ["state", "user", user["userPrincipalName"]],
        ["check"],
    ):
        run_cli([*command, "-c", config])
    monkeypatch.setenv("DELTASYNC_SANDBOX_CLIENT_SECRET", "wrong-secret-value-123")
    assert run_cli(["sync", "-c", config]) == 1
    monkeypatch.setenv("DELTASYNC_SANDBOX_API_TOKEN", "wrong-token-value-456")
    run_cli(["check", "-c", config])
    captured = capsys.readouterr()
    secrets = [*secrets_of(sandbox), "wrong-secret-value-123", "wrong-token-value-456"]
    assert len(sandbox.tokens.issued) >= 3
    state = sandbox.workdir / "state"
    stored = b"".join(p.read_bytes() for p in state.iterdir() if p.is_file())
    for secret in secrets:
        assert secret not in captured.out
        assert secret not in captured.err
        assert secret not in caplog.text
        assert secret.encode() not in stored
    assert "ELIZA" in captured.err or "ELIZA" in captured.out  # the runs did print something


def test_config_repr_and_errors_hide_secrets(sandbox: Sandbox) -> None:
    from deltasync.config import config_to_redacted_dict, load_config

    config = load_config(sandbox.config_path, env=sandbox.env)
    text = repr(config) + str(config_to_redacted_dict(config))
    for secret in sandbox.env.values():
        assert secret not in text
