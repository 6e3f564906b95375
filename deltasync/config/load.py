"""The two entry points: which file to load, and loading it into a checked :class:`Config`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from deltasync.config import expressions, sections
from deltasync.config.checker import Checker
from deltasync.config.model import Config
from deltasync.config.schema import TOP_LEVEL
from deltasync.config.source import CONFIG_ENV_VAR, read_yaml
from deltasync.errors import ConfigError

DEFAULT_CONFIG_PATH: Final = Path("config/entra_sync.yaml")


def load_config(
    path: Path | str, env: Mapping[str, str] | None = None, *, need_secrets: bool = True
) -> Config:
    """Read, interpolate and check a configuration file.

    ``env`` is the environment for ``${VAR}`` (default: ``os.environ``). With
    ``need_secrets=False`` (commands that only read the state database) a secret whose
    variable is unset is no error; its value is then a placeholder that cannot authenticate.

    Raises:
        ConfigError: ``problems`` lists every problem found, each as
            ``"<file>: <dotted.key>: <what was expected, what was found>"``.
    """
    path = Path(path)
    file = str(path)
    environment: Mapping[str, str] = os.environ if env is None else env
    source = read_yaml(path)
    lines = source.lines

    base_dir = Path(os.path.normpath(path.absolute().parent))
    c = Checker(file, base_dir, environment, lines, need_secrets=need_secrets)
    for dotted, line in source.duplicates:
        c.problems.append(
            f"{file}: {dotted}: expected each key once, got it again (line {line}; the "
            f"first is on line {lines.get(dotted, '?')})"
        )
    root = c.interpolate(source.data, "")
    c.unknown_keys(root, "", TOP_LEVEL)

    entra = sections.entra(c, root)
    eliza = sections.eliza(c, root)
    config = Config(
        path=Path(os.path.normpath(path.absolute())),
        entra=entra,
        eliza=eliza,
        sync_options=sections.sync_options(c, root),
        orgunit_mapping=sections.orgunit_mapping(c, root),
        field_mapping=expressions.field_mapping(c, root),
        advanced=expressions.advanced(c, root),
        timezone=sections.timezone(c, root),
        state=sections.state(c, root),
        matching=sections.matching(c, root),
        deprovisioning=sections.deprovisioning(c, root),
        groups=sections.groups(c, root),
        warnings=tuple(c.warnings),
    )
    if c.problems:
        raise ConfigError(c.problems)
    return config


def resolve_config_path(cli_value: str | None, env: Mapping[str, str] | None = None) -> Path:
    """The config file to use: ``-c`` if given, else ``$DELTASYNC_CONFIG``, else
    ``config/entra_sync.yaml`` (relative to the working directory)."""
    environment: Mapping[str, str] = os.environ if env is None else env
    if cli_value:
        return Path(cli_value).expanduser()
    from_env = environment.get(CONFIG_ENV_VAR, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    return DEFAULT_CONFIG_PATH
