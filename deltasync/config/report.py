"""The first half of the checker: collects every problem and warning of one file, describes
found values without leaking secrets, interpolates ``${ENV}`` and reports unknown keys."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from deltasync.config.schema import SECRET_KEYS, SECTIONS, join, suggest
from deltasync.config.values import UNRESOLVED, EnvStr, describe_kind

_REF_RE: Final = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_REF_BODY_RE: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?\Z", re.DOTALL)


class Reporter:
    """Collects every problem and warning of one file, and interpolates ``${ENV}``."""

    def __init__(
        self,
        file: str,
        base_dir: Path,
        env: Mapping[str, str],
        lines: dict[str, int],
        *,
        need_secrets: bool = True,
    ):
        self.need_secrets = need_secrets
        self.file = file
        self.base_dir = base_dir
        self.env = env
        self.lines = lines
        self.problems: list[str] = []
        self.warnings: list[str] = []
        # keys whose value became empty through ${VAR:-} / an empty variable: treated as unset
        self.emptied: dict[str, tuple[str, ...]] = {}
        # keys an unknown key was taken for (a typo): not reported again as missing
        self.suggested: set[str] = set()

    # -- reporting ---------------------------------------------------------------------------

    def report(self, key: str, message: str) -> None:
        line = self.lines.get(key)
        suffix = f" (line {line})" if line else ""
        self.problems.append(f"{self.file}: {key}: {message}{suffix}")

    def warn(self, key: str, message: str) -> None:
        self.warnings.append(f"{key} {message}")

    def nothing(self, key: str) -> str:
        """How an unset value is described: "nothing", or the variables that were empty."""
        refs = self.emptied.get(key)
        if refs:
            return "an empty value from " + ", ".join(f"${{{name}}}" for name in refs)
        return "nothing"

    def describe(self, value: Any, key: str) -> str:
        """How a found value is quoted in a message: never a secret, never an env value."""
        if isinstance(value, EnvStr):
            refs = ", ".join(f"${{{name}}}" for name in value.refs)
            return f"the value of {refs}" if value else f"an empty string from {refs}"
        if key in SECRET_KEYS:
            kind = describe_kind(value)
            return f"{kind} (value not shown)" if isinstance(value, str) and value else kind
        if value is None:
            return self.nothing(key)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, str):
            if not value.strip():
                return "an empty string"
            shown = value if len(value) <= 80 else value[:77] + "..."
            return repr(shown)
        return describe_kind(value)

    # -- interpolation -----------------------------------------------------------------------

    def interpolate(self, value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: self.interpolate(v, join(key, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.interpolate(v, f"{key}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            return self._substitute(value, key)
        return value

    def _substitute(self, text: str, key: str) -> Any:
        refs: list[str] = []
        failed = False

        def replace(match: re.Match[str]) -> str:
            nonlocal failed
            token = match.group(0)
            if token == "$${":
                return "${"
            body = match.group(1)
            parsed = _REF_BODY_RE.match(body) if body is not None else None
            if parsed is None:
                shown = token if body is not None else "${ without a closing }"
                self.report(
                    key,
                    "expected ${VAR} or ${VAR:-default} (VAR of letters, digits and _), "
                    f"got {shown!r}",
                )
                failed = True
                return ""
            name, default = parsed.group(1), parsed.group(2)
            refs.append(name)
            found = self.env.get(name)
            if default is not None and not found:
                return default
            if found is None and not self.need_secrets and key in SECRET_KEYS:
                return f"<{name} not set>"  # a command that never authenticates
            if found is None:
                self.report(
                    key,
                    f"expected environment variable {name} to be set (the file uses ${{{name}}}), "
                    "got it unset; set it or write ${" + name + ":-default}",
                )
                failed = True
                return ""
            return found

        result = _REF_RE.sub(replace, text)
        if failed:
            return UNRESOLVED
        if not refs:
            return result  # only $${ escapes: a literal
        if not result.strip():
            self.emptied[key] = tuple(dict.fromkeys(refs))
            return None  # ${VAR:-} left empty: the key counts as not set
        out = EnvStr(result)
        out.refs = tuple(dict.fromkeys(refs))
        return out

    # -- sections and unknown keys -----------------------------------------------------------

    def section(self, root: Mapping[str, Any], name: str) -> dict[str, Any]:
        """A top-level section as a dict ({} when absent or null); unknown keys reported."""
        value = root.get(name)
        if value is None or value is UNRESOLVED:
            return {}
        if not isinstance(value, dict):
            self.report(name, f"expected a mapping of keys, got {self.describe(value, name)}")
            return {}
        self.unknown_keys(value, name, SECTIONS[name])
        return value

    def unknown_keys(self, data: Mapping[Any, Any], prefix: str, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in data:
            if isinstance(key, str) and key in allowed:
                continue
            dotted = join(prefix, key)
            hint, target = suggest(str(key), prefix, allowed)
            if target is not None:
                self.suggested.add(target)
            self.report(dotted, f"unknown key; {hint}")

    def missing(self, key: str, message: str) -> None:
        """Report a required key that is not set, unless a typo of it was reported already."""
        if key not in self.suggested:
            self.report(key, message)
