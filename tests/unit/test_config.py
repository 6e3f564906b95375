"""Tests of deltasync.config: the seed tool's YAML loads unchanged, defaults follow
interface.md, and every mistake in a file is reported at once without leaking a secret."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from deltasync.config import (
    Config,
    Secret,
    config_to_redacted_dict,
    load_config,
    placeholders,
    resolve_config_path,
)
from deltasync.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "entra_sync.yaml.example"

# The seed tool's chapter (seeds/000_*.txt), "Schritt 6: Konfigurationsdatei erstellen", verbatim.
SEED_YAML = """\
# Microsoft Entra ID Konfiguration
entra:
  tenant_id: "deine-tenant-id"
  client_id: "deine-client-id"
  client_secret: "dein-client-secret"

# ELIZA API Konfiguration
eliza:
  base_url: "https://firma.myeliza.ch"
  api_token: "dein-eliza-api-token"

# Synchronisations-Optionen
sync_options:
  create_users: true
  update_users: true
  create_mitarbeitende: true
  update_mitarbeitende: true
  sync_groups: false
"""

# "Organisationseinheiten-Mapping", verbatim.
SEED_ORGUNITS = """\
orgunit_mapping:
  "Firma AG": 1
  "Firma GmbH": 2
  "Tochtergesellschaft": 3
"""

# "Feld-Mapping anpassen", verbatim.
SEED_FIELD_MAPPING = """\
field_mapping:
  user:
    username: "userPrincipalName"
    email: "mail"
    first_name: "givenName"
    last_name: "surname"
  mitarbeitende:
    telefon: "mobilePhone"
    position: "jobTitle"
    abteilung: "department"
"""

# "Filter für Benutzer", verbatim.
SEED_ADVANCED = """\
advanced:
  user_filter: "accountEnabled eq true"
  excluded_domains:
    - "external.firma.ch"
  excluded_users:
    - "admin@firma.ch"
    - "service@firma.ch"
"""

SECRET = "s3cr3t-Value-never-shown"
TOKEN = "tok-9f8e7d6c5b4a-never-shown"
ENV = {"ENTRA_CLIENT_SECRET": SECRET, "ELIZA_API_TOKEN": TOKEN}

MINIMAL = """\
entra:
  tenant_id: "contoso.onmicrosoft.com"
  client_id: "11111111-2222-3333-4444-555555555555"
  client_secret: "${ENTRA_CLIENT_SECRET}"
eliza:
  base_url: "https://firma.myeliza.ch"
  api_token: "${ELIZA_API_TOKEN}"
"""


def write(folder: Path, text: str, name: str = "entra_sync.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(folder: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(folder, text), env=ENV if env is None else env)


def problems(folder: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = write(folder, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=ENV if env is None else env)
    return info.value.problems


def with_minimal(extra: str) -> str:
    return MINIMAL + textwrap.dedent(extra)


# --------------------------------------------------------------------------------------------
# The seed tool's YAML loads unchanged


def test_seed_example_loads_unchanged(tmp_path: Path) -> None:
    config = load(tmp_path, SEED_YAML, env={})

    assert config.entra.tenant_id == "deine-tenant-id"
    assert config.entra.client_id == "deine-client-id"
    assert config.entra.client_secret is not None
    assert config.entra.client_secret.reveal() == "dein-client-secret"
    assert config.entra.credential_kind == "client_secret"
    assert config.eliza.base_url == "https://firma.myeliza.ch"
    assert config.eliza.api_token.reveal() == "dein-eliza-api-token"
    assert dataclasses.asdict(config.sync_options) == {
        "create_users": True,
        "update_users": True,
        "create_persons": True,  # sync_options.create_mitarbeitende
        "update_persons": True,  # sync_options.update_mitarbeitende
        "sync_groups": False,
    }


def test_seed_literal_secrets_are_allowed_with_a_warning(tmp_path: Path) -> None:
    config = load(tmp_path, SEED_YAML, env={})

    assert config.warnings == (
        "entra.client_secret is written in the file; prefer ${ENV_VAR}",
        "eliza.api_token is written in the file; prefer ${ENV_VAR}",
    )


def test_seed_advanced_examples_load_unchanged(tmp_path: Path) -> None:
    text = SEED_YAML + SEED_ORGUNITS + SEED_FIELD_MAPPING + SEED_ADVANCED
    config = load(tmp_path, text, env={})

    assert config.orgunit_mapping == {"Firma AG": 1, "Firma GmbH": 2, "Tochtergesellschaft": 3}
    user = {name: expr.source for name, expr in config.field_mapping.user.items()}
    assert user == {
        "username": "userPrincipalName",
        "email": "mail",
        "first_name": "givenName",
        "last_name": "surname",
    }
    person = config.field_mapping.person
    assert person["telefon"].source == "mobilePhone"
    assert person["position"].source == "jobTitle"
    assert person["abteilung"].source == "department"
    assert set(person) >= {"vorname", "nachname", "email", "eintrittsdatum"}  # defaults kept
    assert config.advanced.user_filter is not None
    assert config.advanced.user_filter.source == "accountEnabled eq true"
    assert config.advanced.user_filter.matches({"accountEnabled": True})
    assert not config.advanced.user_filter.matches({"accountEnabled": False})
    assert config.advanced.excluded_domains == ("external.firma.ch",)
    assert config.advanced.excluded_users == ("admin@firma.ch", "service@firma.ch")


# --------------------------------------------------------------------------------------------
# The shipped example


def test_example_file_loads_with_its_environment_variables() -> None:
    config = load_config(EXAMPLE, env=dict(ENV))

    assert config.entra.client_secret == Secret(SECRET)
    assert config.eliza.api_token == Secret(TOKEN)
    assert config.warnings == ()
    assert config.state.url == "sqlite:///" + (EXAMPLE.parent / "state/deltasync.db").as_posix()


def test_example_file_without_environment_names_each_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(EXAMPLE, env={})

    found = info.value.problems
    assert len(found) == 2
    assert "entra.client_secret" in found[0]
    assert "ENTRA_CLIENT_SECRET" in found[0]
    assert "eliza.api_token" in found[1]
    assert "ELIZA_API_TOKEN" in found[1]
    assert all(line.startswith(f"{EXAMPLE}: ") for line in found)


def _keys(data: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            keys.add(dotted)
            if dotted not in (
                "orgunit_mapping",
                "field_mapping.user",
                "field_mapping.mitarbeitende",
            ):
                keys |= _keys(value, dotted)
    return keys


def test_example_file_shows_every_key_and_holds_no_secret() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    written = _keys(yaml.safe_load(text))
    effective = _keys(config_to_redacted_dict(load_config(EXAMPLE, env=dict(ENV))))

    assert written == effective
    assert '"${ENTRA_CLIENT_SECRET}"' in text
    assert '"${ELIZA_API_TOKEN}"' in text


# --------------------------------------------------------------------------------------------
# Defaults (interface.md)


def test_minimal_file_gets_every_default(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)

    assert config.path == tmp_path / "entra_sync.yaml"
    assert config.entra.authority_host == "https://login.microsoftonline.com"
    assert config.entra.graph_url == "https://graph.microsoft.com/v1.0"
    assert config.entra.token_scope == "https://graph.microsoft.com/.default"
    assert config.entra.certificate_path is None
    assert config.entra.certificate_password is None
    assert config.entra.managed_identity is False
    assert config.entra.ca_bundle is None
    assert config.eliza.trailing_slash is False
    assert config.eliza.timeout_s == 30
    assert config.eliza.max_concurrency == 8
    assert config.eliza.ca_bundle is None
    assert config.eliza.paths == {
        "user": "user",
        "mitarbeitende": "organisation/mitarbeitende",
        "orgunit": "organisation/orgunit",
        "membership": "organisation/membership",
        "customgroup": "customgroup",
    }
    so = config.sync_options
    assert (so.create_users, so.update_users, so.create_persons) == (True, True, True)
    assert (so.update_persons, so.sync_groups) == (True, False)
    assert config.orgunit_mapping == {}
    assert {k: e.source for k, e in config.field_mapping.user.items()} == {
        "username": "userPrincipalName",
        "email": "mail",
        "first_name": "givenName",
        "last_name": "surname",
    }
    assert {k: e.source for k, e in config.field_mapping.person.items()} == {
        "vorname": "givenName",
        "nachname": "surname",
        "email": "mail",
        "telefon": "mobilePhone",
        "position": "jobTitle",
        "abteilung": "department",
        "eintrittsdatum": "employeeHireDate | date",
    }
    assert config.advanced.user_filter is None
    assert config.advanced.excluded_domains == ()
    assert config.advanced.excluded_users == ()
    assert config.timezone.key == "Europe/Zurich"
    assert config.state.url == f"sqlite:///{(tmp_path / 'state' / 'deltasync.db').as_posix()}"
    assert (config.matching.hard_match, config.matching.soft_match) == (True, True)
    assert config.matching.protected_groups == ()
    assert config.deprovisioning.on_disable == "deactivate"
    assert config.deprovisioning.on_delete == "deactivate"
    assert config.deprovisioning.max_deactivations == 25
    assert config.deprovisioning.max_deactivation_percent == 10
    assert config.groups.include == ()
    assert config.groups.nested == "direct"
    assert config.groups.assign_to_group is None
    assert config.warnings == ()


def test_null_and_empty_sections_take_the_defaults(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        with_minimal("""\
            sync_options:
            matching: null
            advanced:
              excluded_domains:
            """),
    )

    assert config.sync_options.create_users is True
    assert config.matching.hard_match is True
    assert config.advanced.excluded_domains == ()


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.eliza.max_concurrency = 3  # type: ignore[misc]


def test_token_scope_is_the_origin_of_graph_url(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        MINIMAL.replace(
            '  client_secret: "${ENTRA_CLIENT_SECRET}"\n',
            '  client_secret: "${ENTRA_CLIENT_SECRET}"\n'
            '  graph_url: "https://graph.microsoft.us/v1.0/"\n',
        ),
    )

    assert config.entra.graph_url == "https://graph.microsoft.us/v1.0"
    assert config.entra.token_scope == "https://graph.microsoft.us/.default"


def test_values_are_read_as_written(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        with_minimal("""\
            sync_options: {create_users: false, sync_groups: true}
            deprovisioning:
              on_disable: ignore
              on_delete: delete
              max_deactivations: 0
              max_deactivation_percent: 2.5
            matching: {soft_match: false, protected_groups: [3, 7]}
            groups: {include: ["Team *", "4f1b..."], nested: flatten, assign_to_group: 5}
            """),
    )

    assert config.sync_options.create_users is False
    assert config.sync_options.sync_groups is True
    assert config.deprovisioning.on_disable == "ignore"
    assert config.deprovisioning.on_delete == "delete"
    assert config.deprovisioning.max_deactivations == 0
    assert config.deprovisioning.max_deactivation_percent == 2.5
    assert config.matching.soft_match is False
    assert config.matching.protected_groups == (3, 7)
    assert config.groups.include == ("Team *", "4f1b...")
    assert config.groups.nested == "flatten"
    assert config.groups.assign_to_group == 5


def test_eliza_paths_override_some_resources(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        '  api_token: "${ELIZA_API_TOKEN}"\n',
        '  api_token: "${ELIZA_API_TOKEN}"\n  paths:\n    mitarbeitende: "/hr/mitarbeiter/"\n',
    )
    config = load(tmp_path, text)

    assert config.eliza.paths["mitarbeitende"] == "hr/mitarbeiter"
    assert config.eliza.paths["user"] == "user"
    assert config.eliza.path_for("mitarbeitende") == "hr/mitarbeiter"
    assert config.eliza.path_for("organisation/mitarbeitende") == "hr/mitarbeiter"
    assert config.eliza.path_for("organisation/orgunit") == "organisation/orgunit"


# --------------------------------------------------------------------------------------------
# ${ENV} interpolation


def test_env_variables_are_replaced_in_every_string(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        with_minimal("""\
            advanced:
              excluded_users: ["${ADMIN_UPN}", "svc@${DOMAIN}"]
            state:
              url: "postgresql+psycopg://sync@${PGHOST}/deltasync"
            field_mapping:
              mitarbeitende:
                position: "${POSITION_PROPERTY:-jobTitle}"
            """),
        env={**ENV, "ADMIN_UPN": "admin@firma.ch", "DOMAIN": "firma.ch", "PGHOST": "db"},
    )

    assert config.entra.client_secret == Secret(SECRET)
    assert config.advanced.excluded_users == ("admin@firma.ch", "svc@firma.ch")
    assert config.state.url == "postgresql+psycopg://sync@db/deltasync"
    assert config.field_mapping.person["position"].source == "jobTitle"


def test_env_default_applies_when_unset_or_empty(tmp_path: Path) -> None:
    text = with_minimal('timezone: "${TZ_NAME:-Europe/Berlin}"\n')

    assert load(tmp_path, text).timezone.key == "Europe/Berlin"
    assert load(tmp_path, text, env={**ENV, "TZ_NAME": ""}).timezone.key == "Europe/Berlin"
    assert load(tmp_path, text, env={**ENV, "TZ_NAME": "UTC"}).timezone.key == "UTC"


def test_env_values_are_converted_for_numbers_and_booleans(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        with_minimal("""\
            sync_options:
              sync_groups: ${SYNC_GROUPS}
            deprovisioning:
              max_deactivations: ${MAX_DEACT:-40}
              max_deactivation_percent: "${MAX_PCT}"
            """),
        env={**ENV, "SYNC_GROUPS": "true", "MAX_PCT": "12.5"},
    )

    assert config.sync_options.sync_groups is True
    assert config.deprovisioning.max_deactivations == 40
    assert config.deprovisioning.max_deactivation_percent == 12.5


def test_escaped_dollar_brace_stays_literal(tmp_path: Path) -> None:
    config = load(tmp_path, with_minimal('advanced: {excluded_users: ["$${NOT_A_VAR}@x"]}\n'))

    assert config.advanced.excluded_users == ("${NOT_A_VAR}@x",)


def test_unset_variable_names_key_and_variable_but_no_value(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL, env={"ELIZA_API_TOKEN": TOKEN, "OTHER": SECRET})

    assert len(found) == 1
    assert "entra.client_secret" in found[0]
    assert "ENTRA_CLIENT_SECRET" in found[0]
    assert TOKEN not in found[0]
    assert SECRET not in found[0]


def test_env_value_is_never_quoted_in_a_message(tmp_path: Path) -> None:
    text = MINIMAL.replace('"https://firma.myeliza.ch"', '"${ELIZA_URL}"')
    found = problems(tmp_path, text, env={**ENV, "ELIZA_URL": "http://" + TOKEN})

    assert len(found) == 1
    assert "eliza.base_url" in found[0]
    assert "${ELIZA_URL}" in found[0]
    assert TOKEN not in found[0]


def test_malformed_reference_is_reported(tmp_path: Path) -> None:
    found = problems(tmp_path, with_minimal('timezone: "${TZ NAME}"\n'))

    assert len(found) == 1
    assert "timezone" in found[0]
    assert "${VAR}" in found[0]


# --------------------------------------------------------------------------------------------
# Every problem at once


def test_four_mistakes_give_four_problems_naming_key_and_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        entra:
          tenant_id: "contoso.onmicrosoft.com"
          client_id: "11111111-2222-3333-4444-555555555555"
          client_secret: "${ENTRA_CLIENT_SECRET}"
        eliza:
          base_url: "http://firma.myeliza.ch"
          api_token: "${ELIZA_API_TOKEN}"
          max_concurrency: 100
        deprovisioning:
          on_delete: remove
        timezone: "Europe/Zurik"
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env=ENV)

    found = info.value.problems
    assert len(found) == 4, found
    for line, key in zip(
        sorted(found),
        ["deprovisioning.on_delete", "eliza.base_url", "eliza.max_concurrency", "timezone"],
        strict=True,
    ):
        assert line.startswith(f"{path}: {key}: expected "), line
    assert str(info.value) == "\n".join(found)


def test_problems_carry_the_line_of_the_key(tmp_path: Path) -> None:
    found = problems(tmp_path, with_minimal("groups:\n  nested: deep\n"))

    assert found == [
        f"{tmp_path / 'entra_sync.yaml'}: groups.nested: expected one of direct | flatten, "
        "got 'deep' (line 9)"
    ]


def test_missing_required_keys_are_all_named(tmp_path: Path) -> None:
    found = problems(tmp_path, "timezone: UTC\n")

    assert len(found) == 5
    joined = "\n".join(found)
    for key in (
        "entra.tenant_id",
        "entra.client_id",
        "entra:",
        "eliza.base_url",
        "eliza.api_token",
    ):
        assert key in joined


def test_credentials_must_be_exactly_one(tmp_path: Path) -> None:
    none = MINIMAL.replace('  client_secret: "${ENTRA_CLIENT_SECRET}"\n', "")
    found = problems(tmp_path, none)
    assert len(found) == 1
    assert ": entra: expected exactly one credential" in found[0]

    two = MINIMAL.replace(
        '  client_secret: "${ENTRA_CLIENT_SECRET}"\n',
        '  client_secret: "${ENTRA_CLIENT_SECRET}"\n  managed_identity: true\n',
    )
    found = problems(tmp_path, two)
    assert len(found) == 1
    assert "client_secret and managed_identity" in found[0]

    managed = none.replace("  client_id:", "  managed_identity: true\n  client_id:")
    config = load(tmp_path, managed)
    assert config.entra.managed_identity is True
    assert config.entra.credential_kind == "managed_identity"


@pytest.mark.parametrize(
    ("snippet", "key", "expected"),
    [
        ("sync_options: {create_users: 1}", "sync_options.create_users", "true or false"),
        ('sync_options: {sync_groups: "false"}', "sync_options.sync_groups", "remove the quotes"),
        (
            "deprovisioning: {on_disable: delete}",
            "deprovisioning.on_disable",
            "deactivate | ignore",
        ),
        ("deprovisioning: {max_deactivations: -1}", "deprovisioning.max_deactivations", ">= 0"),
        (
            "deprovisioning: {max_deactivation_percent: 101}",
            "deprovisioning.max_deactivation_percent",
            "from 0 to 100",
        ),
        ("groups: {nested: deep}", "groups.nested", "direct | flatten"),
        ("groups: {assign_to_group: 0}", "groups.assign_to_group", ">= 1"),
        ('orgunit_mapping: {"Firma AG": 0}', 'orgunit_mapping."Firma AG"', "integer >= 1"),
        ('orgunit_mapping: {"Firma AG": "1"}', 'orgunit_mapping."Firma AG"', "remove the quotes"),
        ("matching: {protected_groups: [1, x]}", "matching.protected_groups[1]", "group id"),
        ("advanced: {excluded_users: [1]}", "advanced.excluded_users[0]", "non-empty string"),
        ("state: {url: state.db}", "state.url", "SQLAlchemy URL"),
        ("sync_options: [create_users]", "sync_options", "mapping"),
    ],
)
def test_wrong_values_are_reported_with_their_key(
    tmp_path: Path, snippet: str, key: str, expected: str
) -> None:
    found = problems(tmp_path, with_minimal(snippet + "\n"))
    assert len(found) == 1, found
    assert f": {key}: expected" in found[0]
    assert expected in found[0]


@pytest.mark.parametrize("value", ["0", "-1.5", "soon", "[30]"])
def test_eliza_timeout_must_be_a_positive_number(tmp_path: Path, value: str) -> None:
    found = problems(tmp_path, MINIMAL.replace("eliza:\n", f"eliza:\n  timeout_s: {value}\n"))

    assert len(found) == 1
    assert ": eliza.timeout_s: expected a number > 0, got " in found[0]


def test_single_string_is_read_as_a_one_item_list(tmp_path: Path) -> None:
    config = load(tmp_path, with_minimal("groups: {include: web}\n"))

    assert config.groups.include == ("web",)


@pytest.mark.parametrize("tenant", ["contoso/../x", "a b", "tenant?x"])
def test_tenant_id_must_be_letters_digits_dash_dot(tmp_path: Path, tenant: str) -> None:
    found = problems(tmp_path, MINIMAL.replace("contoso.onmicrosoft.com", tenant))

    assert len(found) == 1
    assert ": entra.tenant_id: expected a tenant id" in found[0]


def test_duplicate_key_is_reported(tmp_path: Path) -> None:
    found = problems(tmp_path, with_minimal("timezone: UTC\ntimezone: Europe/Zurich\n"))

    assert len(found) == 1
    assert ": timezone: expected each key once" in found[0]


# --------------------------------------------------------------------------------------------
# The file itself


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", env=ENV)

    assert info.value.problems == [
        f"{tmp_path / 'nope.yaml'}: configuration file not found "
        "(give the path with -c or $DELTASYNC_CONFIG)"
    ]


def test_yaml_syntax_error_names_the_line_and_not_the_text(tmp_path: Path) -> None:
    text = MINIMAL.replace('  api_token: "${ELIZA_API_TOKEN}"', f"  api_token: {TOKEN}: x")
    found = problems(tmp_path, text)

    assert len(found) == 1
    assert "line 7" in found[0]
    assert "YAML syntax error" in found[0]
    assert TOKEN not in found[0]


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("", "an empty file"),
        ("# only\n", "an empty file"),
        ("- a\n- b\n", "a list"),
        ("just text\n", "a string"),
    ],
)
def test_empty_or_non_mapping_file_is_an_error(tmp_path: Path, text: str, got: str) -> None:
    found = problems(tmp_path, text)

    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'entra_sync.yaml'}: expected a YAML mapping")
    assert found[0].endswith(got)


# --------------------------------------------------------------------------------------------
# Secrets


def test_secret_prints_as_stars_and_reveals_on_request() -> None:
    secret = Secret(SECRET)

    assert repr(secret) == "***"
    assert str(secret) == "***"
    assert f"{secret}" == "***"
    assert secret.reveal() == SECRET
    assert secret == Secret(SECRET)
    assert secret != Secret("other")


def test_secrets_never_appear_in_repr_str_or_redacted_dict(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace(
            '  client_secret: "${ENTRA_CLIENT_SECRET}"\n',
            '  certificate_path: "certs/app.pem"\n  certificate_password: "${CERT_PW}"\n',
        )
        + 'state: {url: "postgresql+psycopg://sync:${PGPASSWORD}@db/deltasync"}\n'
    )
    pw, pg = "cert-pw-never-shown", "pg-pw-never-shown"
    config = load(tmp_path, text, env={**ENV, "CERT_PW": pw, "PGPASSWORD": pg})

    redacted = config_to_redacted_dict(config)
    outputs = [repr(config), str(config), json.dumps(redacted), repr(dataclasses.asdict(config))]
    for output in outputs[:3]:
        for value in (TOKEN, pw, pg):
            assert value not in output
    assert redacted["entra"]["certificate_password"] == "***"
    assert redacted["eliza"]["api_token"] == "***"
    assert redacted["entra"]["client_secret"] is None
    assert redacted["state"]["url"] == "postgresql+psycopg://sync:***@db/deltasync"
    assert config.state.url == f"postgresql+psycopg://sync:{pg}@db/deltasync"
    assert config.entra.certificate_password is not None
    assert config.entra.certificate_password.reveal() == pw


def test_secret_of_wrong_type_is_reported_without_its_value(tmp_path: Path) -> None:
    text = MINIMAL.replace('"${ELIZA_API_TOKEN}"', "987654321123")
    found = problems(tmp_path, text)

    assert len(found) == 1
    assert ": eliza.api_token: expected a non-empty string" in found[0]
    assert "987654321123" not in found[0]


def test_literal_password_in_state_url_warns(tmp_path: Path) -> None:
    config = load(tmp_path, with_minimal('state: {url: "postgresql://u:literal@db/x"}\n'))

    assert config.warnings == ("state.url has a password written in the file; prefer ${ENV_VAR}",)
    assert "literal" not in repr(config.state)


# --------------------------------------------------------------------------------------------
# Paths


def test_relative_paths_are_resolved_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc" / "deltasync"
    folder.mkdir(parents=True)
    text = MINIMAL.replace(
        '  client_secret: "${ENTRA_CLIENT_SECRET}"\n',
        '  certificate_path: "certs/app.pem"\n  ca_bundle: "../ca/proxy.pem"\n',
    ).replace("eliza:\n", "eliza:\n  ca_bundle: /opt/ca.pem\n")
    config = load_config(write(folder, text), env=ENV)

    assert config.entra.certificate_path == folder / "certs" / "app.pem"
    assert config.entra.credential_kind == "certificate"
    assert config.entra.ca_bundle == tmp_path / "etc" / "ca" / "proxy.pem"
    assert config.eliza.ca_bundle == Path("/opt/ca.pem")
    assert config.state.url == f"sqlite:///{(folder / 'state' / 'deltasync.db').as_posix()}"
    assert not (folder / "state").exists()  # created on use, not at load


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/sync.db?timeout=5", "sqlite:///{folder}/data/sync.db?timeout=5"),
        ("sqlite+pysqlite:///sync.db", "sqlite+pysqlite:///{folder}/sync.db"),
        ("sqlite:////var/lib/deltasync/sync.db", "sqlite:////var/lib/deltasync/sync.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite://", "sqlite://"),
        ("postgresql+psycopg://sync@db/deltasync", "postgresql+psycopg://sync@db/deltasync"),
    ],
)
def test_state_url_resolution(tmp_path: Path, url: str, expected: str) -> None:
    config = load(tmp_path, with_minimal(f'state: {{url: "{url}"}}\n'))

    assert config.state.url == expected.format(folder=tmp_path.as_posix())


def test_resolve_config_path_prefers_flag_then_env_then_default() -> None:
    env = {"DELTASYNC_CONFIG": "/etc/deltasync.yaml"}

    assert resolve_config_path("my.yaml", env) == Path("my.yaml")
    assert resolve_config_path(None, env) == Path("/etc/deltasync.yaml")
    assert resolve_config_path(None, {}) == Path("config/entra_sync.yaml")
    assert resolve_config_path(None, {"DELTASYNC_CONFIG": ""}) == Path("config/entra_sync.yaml")


# --------------------------------------------------------------------------------------------
# Unknown keys


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            MINIMAL.replace("  base_url:", "  base_ulr:"),
            "eliza.base_ulr: unknown key; did you mean eliza.base_url?",
        ),
        (with_minimal("sync_option: {}\n"), "sync_option: unknown key; did you mean sync_options?"),
        (
            with_minimal("user_filter: x\n"),
            "user_filter: unknown key; did you mean advanced.user_filter?",
        ),
        (
            MINIMAL.replace("eliza:\n", "eliza:\n  timezone: UTC\n"),
            "eliza.timezone: unknown key; did you mean timezone (at the top level)?",
        ),
        (
            with_minimal("groups: {xyzzy: 1}\n"),
            "groups.xyzzy: unknown key; expected one of: "
            "include, nested, delete_removed, assign_to_group",
        ),
    ],
)
def test_unknown_key_suggests_the_right_one(tmp_path: Path, text: str, line: str) -> None:
    found = problems(tmp_path, text)

    assert len(found) == 1, found
    assert f"{tmp_path / 'entra_sync.yaml'}: {line}" in found[0]


def test_typo_of_a_required_key_is_one_problem_not_two(tmp_path: Path) -> None:
    text = MINIMAL.replace("  base_url:", "  baseurl:").replace("  client_secret:", "  secret:")
    found = problems(tmp_path, text)

    assert [p.split(": ")[1] for p in found] == ["entra.secret", "eliza.baseurl"]
    assert "did you mean entra.client_secret?" in found[0]
    assert "did you mean eliza.base_url?" in found[1]


def test_unrelated_unknown_key_does_not_hide_a_missing_one(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL.replace("  base_url:", "  homepage:"))

    assert [p.split(": ")[1] for p in found] == ["eliza.homepage", "eliza.base_url"]


# --------------------------------------------------------------------------------------------
# Time zone


def test_timezone_is_a_zoneinfo(tmp_path: Path) -> None:
    assert load(tmp_path, with_minimal("timezone: America/New_York\n")).timezone.key == (
        "America/New_York"
    )


@pytest.mark.parametrize("name", ["Europe/Zurch", "Mars/Olympus", "../../etc/passwd", "42"])
def test_invalid_timezone_is_reported(tmp_path: Path, name: str) -> None:
    found = problems(tmp_path, with_minimal(f'timezone: "{name}"\n'))

    assert len(found) == 1
    assert ": timezone: expected an IANA time zone name" in found[0]


def test_invalid_timezone_suggests_a_close_one(tmp_path: Path) -> None:
    found = problems(tmp_path, with_minimal("timezone: Europe/Zurch\n"))

    assert "did you mean 'Europe/Zurich'?" in found[0]


# --------------------------------------------------------------------------------------------
# URLs: https, or http only on loopback


@pytest.mark.parametrize(
    "url",
    [
        "https://firma.myeliza.ch",
        "https://firma.myeliza.ch:8443/eliza/",
        "http://127.0.0.1:8000",
        "http://127.5.6.7",
        "http://localhost:8080",
        "http://LOCALHOST",
        "http://[::1]:9000",
    ],
)
def test_eliza_base_url_accepts_https_and_loopback_http(tmp_path: Path, url: str) -> None:
    config = load(tmp_path, MINIMAL.replace("https://firma.myeliza.ch", url))

    assert config.eliza.base_url == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://firma.myeliza.ch",
        "http://10.0.0.5",
        "http://128.0.0.1",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "ftp://firma.myeliza.ch",
        "firma.myeliza.ch",
        "https://user:pw@firma.myeliza.ch",
        "https://firma.myeliza.ch/?x=1",
        "https://firma.myeliza.ch:99999",
    ],
)
def test_eliza_base_url_refuses_plain_http_elsewhere(tmp_path: Path, url: str) -> None:
    found = problems(tmp_path, MINIMAL.replace("https://firma.myeliza.ch", url))

    assert len(found) == 1
    assert ": eliza.base_url: expected " in found[0]
    assert "pw@" not in found[0]


def test_authority_host_must_be_https_and_graph_url_may_be_http(tmp_path: Path) -> None:
    extra = '  client_secret: "${ENTRA_CLIENT_SECRET}"\n'
    text = MINIMAL.replace(
        extra, extra + '  authority_host: "http://127.0.0.1:9443"\n  graph_url: "ftp://g"\n'
    )
    found = problems(tmp_path, text)
    assert len(found) == 2
    assert ": entra.authority_host: expected an https:// URL" in found[0]
    assert ": entra.graph_url: expected an https:// URL" in found[1]

    text = MINIMAL.replace(
        extra,
        extra
        + '  authority_host: "https://127.0.0.1:9443/"\n'
        + '  graph_url: "http://127.0.0.1:9000/v1.0"\n',
    )
    config = load(tmp_path, text)
    assert config.entra.authority_host == "https://127.0.0.1:9443"
    assert config.entra.graph_url == "http://127.0.0.1:9000/v1.0"
    assert config.entra.token_scope == "http://127.0.0.1:9000/.default"
    assert config.warnings == ()


def test_plain_http_graph_url_off_loopback_warns(tmp_path: Path) -> None:
    extra = '  client_secret: "${ENTRA_CLIENT_SECRET}"\n'
    config = load(
        tmp_path, MINIMAL.replace(extra, extra + '  graph_url: "http://graph.lan/v1.0"\n')
    )

    assert len(config.warnings) == 1
    assert config.warnings[0].startswith("entra.graph_url uses plain http://")


# --------------------------------------------------------------------------------------------
# Field mapping and filter


def test_field_mapping_extends_overrides_and_removes_defaults(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        with_minimal("""\
            field_mapping:
              user:
                email: "mail | lower"
                first_name: null
              mitarbeitende:
                kurzzeichen: "displayName | initials"
                eintrittsdatum: null
            """),
    )

    user = config.field_mapping.user
    person = config.field_mapping.person
    assert set(user) == {"username", "email", "last_name"}
    assert user["email"].evaluate({"mail": "Max.Muster@Firma.CH"}, config.timezone) == (
        "max.muster@firma.ch"
    )
    assert "eintrittsdatum" not in person
    assert person["kurzzeichen"].evaluate({"displayName": "Max Muster"}, config.timezone) == "MM"


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("user", "remote_key"),
        ("user", "is_active"),
        ("mitarbeitende", "user"),
        ("mitarbeitende", "remote_key"),
    ],
)
def test_fields_set_by_deltasync_cannot_be_mapped(tmp_path: Path, kind: str, name: str) -> None:
    found = problems(tmp_path, with_minimal(f"field_mapping:\n  {kind}:\n    {name}: id\n"))

    assert len(found) == 1
    assert f": field_mapping.{kind}.{name}: " in found[0]
    assert "cannot be mapped" in found[0]


def test_required_eliza_field_cannot_be_removed(tmp_path: Path) -> None:
    found = problems(tmp_path, with_minimal("field_mapping:\n  user:\n    username: null\n"))

    assert len(found) == 1
    assert ": field_mapping.user.username: " in found[0]


def test_bad_expressions_are_each_reported_with_their_key(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        with_minimal("""\
            field_mapping:
              user:
                email: "mail | shout"
              mitarbeitende:
                position: "{jobTitle"
                telefon: 42
            """),
    )

    assert len(found) == 3
    assert ": field_mapping.user.email: " in found[0]
    assert "shout" in found[0]
    assert ": field_mapping.mitarbeitende.position: " in found[1]
    assert ": field_mapping.mitarbeitende.telefon: expected a Graph property" in found[2]


def test_bad_user_filter_is_reported_with_its_key(tmp_path: Path) -> None:
    found = problems(tmp_path, with_minimal('advanced: {user_filter: "accountEnabled eq"}\n'))

    assert len(found) == 1
    assert ": advanced.user_filter: " in found[0]


def test_commands_that_read_only_the_state_load_without_secrets(tmp_path: Path) -> None:
    path = tmp_path / "entra_sync.yaml"
    path.write_text(
        "entra:\n  tenant_id: t\n  client_id: c\n  client_secret: ${NO_SUCH_SECRET}\n"
        "eliza:\n  base_url: https://firma.myeliza.ch\n  api_token: ${NO_SUCH_TOKEN}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError):
        load_config(path, env={})
    config = load_config(path, env={}, need_secrets=False)
    assert config.eliza.api_token.reveal() == "<NO_SUCH_TOKEN not set>"
    broken = path.read_text(encoding="utf-8").replace("tenant_id: t", "tenant_id: ${NO_TENANT}")
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError, match="NO_TENANT"):  # only secrets may be missing
        load_config(path, env={}, need_secrets=False)


# --------------------------------------------------------------------------------------------
# Secrets that cannot be sent


@pytest.mark.parametrize(
    ("variable", "value", "key", "expected"),
    [
        ("ENTRA_CLIENT_SECRET", SECRET + "\n", "entra.client_secret", "line break"),
        ("ENTRA_CLIENT_SECRET", "Sbx8Q~" + "\r\n" + "rest", "entra.client_secret", "line break"),
        ("ENTRA_CLIENT_SECRET", "Sbx8Q~\tsecret", "entra.client_secret", "control character"),
        ("ELIZA_API_TOKEN", TOKEN + "\n", "eliza.api_token", "line break"),
        ("ELIZA_API_TOKEN", "tok\x00en-value", "eliza.api_token", "control character"),
        ("ELIZA_API_TOKEN", "tökén-9f8e7d6c5b4a", "eliza.api_token", "non-ASCII"),
        ("ELIZA_API_TOKEN", "token\u00a0value", "eliza.api_token", "non-ASCII"),
        ("CERT_PASSWORD", "pässwörd\n", "entra.certificate_password", "line break"),
    ],
)
def test_a_secret_that_cannot_be_sent_is_a_config_error_naming_the_key(
    tmp_path: Path, variable: str, value: str, key: str, expected: str
) -> None:
    text = MINIMAL.replace(
        '  client_secret: "${ENTRA_CLIENT_SECRET}"\n',
        '  client_secret: "${ENTRA_CLIENT_SECRET}"\n  certificate_password: "${CERT_PASSWORD}"\n',
    )
    env = {**ENV, "CERT_PASSWORD": "fine-password", variable: value}

    found = problems(tmp_path, text, env=env)

    assert len(found) == 1
    assert f": {key}: " in found[0]
    assert expected in found[0]
    assert f"${{{variable}}}" in found[0]  # the variable it came from is named
    assert value.strip() not in found[0]
    assert value not in found[0]


def test_a_control_character_in_a_literal_secret_is_reported(tmp_path: Path) -> None:
    text = MINIMAL.replace('"${ELIZA_API_TOKEN}"', '"Qx7Lw\\tZp3Rk"')

    found = problems(tmp_path, text)

    assert len(found) == 1
    assert ": eliza.api_token: " in found[0]
    assert "control character (U+0009)" in found[0]
    assert "Qx7Lw" not in found[0]
    assert "Zp3Rk" not in found[0]


def test_non_ascii_client_secret_and_certificate_password_load(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        '  client_secret: "${ENTRA_CLIENT_SECRET}"\n',
        '  client_secret: "${ENTRA_CLIENT_SECRET}"\n  certificate_password: "${CERT_PASSWORD}"\n',
    )
    env = {**ENV, "ENTRA_CLIENT_SECRET": "Sbx8Q~ä-secret", "CERT_PASSWORD": "Pässwörd"}

    config = load(tmp_path, text, env=env)

    assert config.entra.client_secret == Secret("Sbx8Q~ä-secret")
    assert config.entra.certificate_password == Secret("Pässwörd")


def test_secret_errors_come_before_any_network_call_with_exit_code_2(tmp_path: Path) -> None:
    env = {**ENV, "ELIZA_API_TOKEN": "tökén"}
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL), env=env)
    assert info.value.exit_code == 2


# --------------------------------------------------------------------------------------------
# A user-assigned managed identity

MANAGED = MINIMAL.replace(
    '  client_secret: "${ENTRA_CLIENT_SECRET}"\n',
    "  managed_identity: true\n"
    '  managed_identity_client_id: "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"\n',
)


def test_managed_identity_client_id_loads(tmp_path: Path) -> None:
    config = load(tmp_path, MANAGED)

    assert config.entra.managed_identity is True
    assert config.entra.managed_identity_client_id == "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    assert config.entra.credential_kind == "managed_identity"
    redacted = config_to_redacted_dict(config)["entra"]
    assert redacted["managed_identity_client_id"] == "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"


def test_managed_identity_client_id_defaults_to_the_system_assigned_identity(
    tmp_path: Path,
) -> None:
    config = load(tmp_path, MINIMAL)

    assert config.entra.managed_identity_client_id is None


@pytest.mark.parametrize("value", ["not-a-guid", "6f1c2b3a4d5e4f608a7b9c0d1e2f3a4b0", "12"])
def test_managed_identity_client_id_must_be_a_guid(tmp_path: Path, value: str) -> None:
    found = problems(tmp_path, MANAGED.replace("6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b", value))

    assert len(found) == 1
    assert ": entra.managed_identity_client_id: expected a GUID" in found[0]


def test_managed_identity_client_id_without_managed_identity_warns(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "  client_id:",
        '  managed_identity_client_id: "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"\n  client_id:',
    )

    config = load(tmp_path, text)

    assert any("entra.managed_identity_client_id" in w for w in config.warnings)


# --------------------------------------------------------------------------------------------
# Placeholders left from the example config (reported by check, never a load error)


def test_example_config_placeholders_are_found_without_showing_secrets() -> None:
    config = load_config(EXAMPLE, env=dict(ENV))

    found = placeholders(config)

    assert [line.split(":")[0] for line in found] == [
        "entra.tenant_id",
        "entra.client_id",
        "eliza.base_url",
    ]
    assert "all-zero GUID" in found[0]
    assert "firma.myeliza.ch" in found[2]


def test_seed_config_loads_and_its_placeholders_are_named(tmp_path: Path) -> None:
    config = load(tmp_path, SEED_YAML, env={})

    found = placeholders(config)

    keys = [line.split(":")[0] for line in found]
    assert keys == [
        "entra.tenant_id",
        "entra.client_id",
        "entra.client_secret",
        "eliza.api_token",
        "eliza.base_url",
    ]
    assert "dein-client-secret" not in " ".join(found)
    assert "dein-eliza-api-token" not in " ".join(found)


def test_a_real_config_has_no_placeholders(tmp_path: Path) -> None:
    text = MINIMAL.replace("https://firma.myeliza.ch", "https://pflegeheim-sonnegg.myeliza.ch")

    assert placeholders(load(tmp_path, text)) == []
