"""The YAML source: read the file, parse it safely, remember the line of every key and refuse
duplicate keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deltasync.config.schema import join
from deltasync.config.values import describe_kind
from deltasync.errors import ConfigError

CONFIG_ENV_VAR = "DELTASYNC_CONFIG"


@dataclass(frozen=True)
class YamlSource:
    """A parsed file: its top-level mapping, the line of each dotted key, and every key that
    was written a second time (dotted key, line)."""

    data: dict[str, Any]
    lines: dict[str, int]
    duplicates: list[tuple[str, int]]


def read_yaml(path: Path) -> YamlSource:
    """Read and parse a configuration file.

    Raises:
        ConfigError: the file cannot be read, is not YAML, or is not a mapping at the top.
    """
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"{file}: configuration file not found (give the path with -c or ${CONFIG_ENV_VAR})"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{file}: expected a configuration file, got a folder") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: expected UTF-8 text, got undecodable bytes") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the configuration file: {exc.strerror}") from None

    lines: dict[str, int] = {}
    duplicates: list[tuple[str, int]] = []
    try:
        loader = Loader(text)  # reads the whole text: a control character fails right here
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_problem(file, exc)) from None
    try:
        node = loader.get_single_node()
        if node is not None:
            scan(node, "", lines, duplicates)
            data: Any = loader.construct_document(node)
        else:
            data = None
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_problem(file, exc)) from None
    finally:
        loader.dispose()

    if data is None:
        raise ConfigError(
            f"{file}: expected a YAML mapping with at least the entra: and eliza: sections, "
            "got an empty file"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file}: expected a YAML mapping with the entra: and eliza: sections at the top, "
            f"got {describe_kind(data)}"
        )
    return YamlSource(data, lines, duplicates)


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader; only the node tree is inspected before construction."""


def scan(
    node: yaml.Node,
    prefix: str,
    lines: dict[str, int],
    dups: list[tuple[str, int]],
    active: frozenset[int] = frozenset(),
) -> None:
    """Record the line of every key (dotted) and every repeated key; aliases may form cycles."""
    if id(node) in active:
        return
    active = active | {id(node)}
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            dotted = join(prefix, key_node.value)
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                dups.append((dotted, line))
            else:
                seen.add(key_node.value)
                lines[dotted] = line
            scan(value_node, dotted, lines, dups, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            dotted = f"{prefix}[{index}]"
            lines[dotted] = item.start_mark.line + 1
            scan(item, dotted, lines, dups, active)


def yaml_problem(file: str, exc: yaml.YAMLError) -> str:
    # Only the parser's own words and the position: str(exc) would quote the offending line,
    # which may hold a secret.
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return f"{file}: {where}YAML syntax error: {what}"
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return (
            f"{file}: character #x{char:04x} at position {exc.position} is not allowed in YAML "
            "(a control character: retype that part of the file)"
        )
    return f"{file}: YAML syntax error"
