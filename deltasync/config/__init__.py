"""Load and check deltasync's YAML configuration file.

An administrator's mistake must surface before any network call, all at once, each line naming
the file and the key; a secret must never reach output. Everything else in deltasync receives
the frozen, typed :class:`Config` built here and never looks at YAML itself.

The package, in reading order: :mod:`~deltasync.config.model` (the dataclasses and
:class:`Secret`), :mod:`~deltasync.config.source` (the YAML source and its line map),
:mod:`~deltasync.config.schema` (which keys exist), :mod:`~deltasync.config.report` and
:mod:`~deltasync.config.checker` (the checker), :mod:`~deltasync.config.sections` and
:mod:`~deltasync.config.expressions` (one function per section),
:mod:`~deltasync.config.redact` (redaction) and :mod:`~deltasync.config.load`.

The file format is a superset of ELIZA's own Entra sync tool (its example loads unchanged); the
keys, defaults and meaning are described in ``interface.md`` and in
``config/entra_sync.yaml.example``.

Rules applied by :func:`load_config`:

- ``${VAR}`` and ``${VAR:-default}`` are replaced in every string value (``$${`` is a literal
  ``${``). An unset variable without a default is an error naming the key and the variable.
  A value that came from the environment is never quoted back in a message.
- A missing key, or a key set to ``null``, takes its default (in ``field_mapping``, ``null``
  removes a default field).
- Relative paths (``certificate_path``, ``ca_bundle``, a relative SQLite file in ``state.url``)
  are relative to the config file's folder. Nothing is created or opened at load time.
"""

from __future__ import annotations

from deltasync.config.load import DEFAULT_CONFIG_PATH, load_config, resolve_config_path
from deltasync.config.model import (
    DEFAULT_ELIZA_PATHS,
    AdvancedConfig,
    Config,
    DeprovisioningConfig,
    ElizaConfig,
    EntraConfig,
    FieldMapping,
    GroupsConfig,
    MatchingConfig,
    Secret,
    StateConfig,
    SyncOptions,
)
from deltasync.config.placeholders import placeholders
from deltasync.config.redact import config_to_redacted_dict, redact_url

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_ELIZA_PATHS",
    "AdvancedConfig",
    "Config",
    "DeprovisioningConfig",
    "ElizaConfig",
    "EntraConfig",
    "FieldMapping",
    "GroupsConfig",
    "MatchingConfig",
    "Secret",
    "StateConfig",
    "SyncOptions",
    "config_to_redacted_dict",
    "load_config",
    "placeholders",
    "redact_url",
    "resolve_config_path",
]
