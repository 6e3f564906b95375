"""The checker's typed readers: each reads one key of a section, reports a wrong value with
the key, the file and the line, and returns the default so the check goes on."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from deltasync.config.model import Secret
from deltasync.config.report import Reporter
from deltasync.config.schema import join
from deltasync.config.values import UNRESOLVED, EnvStr, quote_hint


class Checker(Reporter):
    """Reads typed values out of the checked sections; a wrong value is reported and the
    default used, so that every problem of the file is found in one pass."""

    # -- typed readers -----------------------------------------------------------------------

    def string(
        self, sec: Mapping[str, Any], prefix: str, name: str, default: str | None = None
    ) -> str | None:
        key = join(prefix, name)
        value = sec.get(name)
        if value is None or value is UNRESOLVED:
            return default
        if not isinstance(value, str) or not value.strip():
            self.report(key, f"expected a non-empty string, got {self.describe(value, key)}")
            return default
        return str(value).strip()

    def required_string(self, sec: Mapping[str, Any], prefix: str, name: str) -> str:
        key = join(prefix, name)
        value = sec.get(name)
        if value is UNRESOLVED:
            return ""
        if value is None:
            self.missing(key, f"expected a non-empty string (required), got {self.nothing(key)}")
            return ""
        return self.string(sec, prefix, name) or ""

    def secret(
        self,
        sec: Mapping[str, Any],
        prefix: str,
        name: str,
        *,
        required: bool = False,
        header: bool = False,
    ) -> Secret | None:
        """A secret; ``header``: it is sent in an HTTP header, so it must be ASCII."""
        key = join(prefix, name)
        value = sec.get(name)
        if value is UNRESOLVED:
            return None
        if value is None:
            if required:
                self.missing(
                    key, f"expected a secret, e.g. ${{ENV_VAR}} (required), got {self.nothing(key)}"
                )
            return None
        if not isinstance(value, str) or not value.strip():
            self.report(key, f"expected a non-empty string, got {self.describe(value, key)}")
            return None
        problem = _unsendable(str(value), header=header)
        if problem is not None:
            refs = getattr(value, "refs", ())
            origin = f" (from {', '.join(f'${{{r}}}' for r in refs)})" if refs else ""
            self.report(key, f"expected a secret on one line, but the value{origin} {problem}")
            return None
        if not isinstance(value, EnvStr):
            self.warn(key, "is written in the file; prefer ${ENV_VAR}")
        return Secret(str(value))

    def boolean(self, sec: Mapping[str, Any], prefix: str, name: str, default: bool) -> bool:
        key = join(prefix, name)
        value = sec.get(name)
        if value is None or value is UNRESOLVED:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, EnvStr):
            word = value.strip().lower()
            if word in ("true", "yes", "on", "1"):
                return True
            if word in ("false", "no", "off", "0"):
                return False
        hint = (
            " (remove the quotes)"
            if isinstance(value, str) and value.strip().lower() in ("true", "false")
            else ""
        )
        self.report(key, f"expected true or false, got {self.describe(value, key)}{hint}")
        return default

    def integer(
        self,
        sec: Mapping[str, Any],
        prefix: str,
        name: str,
        default: int | None,
        *,
        low: int | None = None,
        high: int | None = None,
    ) -> int | None:
        key = join(prefix, name)
        value = sec.get(name)
        if value is None or value is UNRESOLVED:
            return default
        number = self.as_int(value)
        if (
            number is None
            or (low is not None and number < low)
            or (high is not None and number > high)
        ):
            self.report(
                key,
                f"expected {_range_text('an integer', low, high)}, "
                f"got {self.describe(value, key)}{quote_hint(value)}",
            )
            return default
        return number

    @staticmethod
    def as_int(value: Any) -> int | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, EnvStr) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            return int(value)
        return None

    def number(
        self,
        sec: Mapping[str, Any],
        prefix: str,
        name: str,
        default: float,
        *,
        low: float | None = None,
        high: float | None = None,
        low_exclusive: bool = False,
    ) -> float:
        key = join(prefix, name)
        value = sec.get(name)
        if value is None or value is UNRESOLVED:
            return default
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, EnvStr):
            try:
                number = float(value)
            except ValueError:
                number = None
        ok = number is not None and math.isfinite(number)
        if ok and number is not None and low is not None:
            ok = number > low if low_exclusive else number >= low
        if ok and number is not None and high is not None:
            ok = number <= high
        if not ok or number is None:
            if low_exclusive and high is None:
                wanted = f"a number > {_num(low)}"
            else:
                wanted = _range_text("a number", low, high)
            self.report(
                key, f"expected {wanted}, got {self.describe(value, key)}{quote_hint(value)}"
            )
            return default
        return number

    def choice(
        self, sec: Mapping[str, Any], prefix: str, name: str, default: str, choices: tuple[str, ...]
    ) -> str:
        key = join(prefix, name)
        value = sec.get(name)
        if value is None or value is UNRESOLVED:
            return default
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        self.report(key, f"expected one of {' | '.join(choices)}, got {self.describe(value, key)}")
        return default

    def path(self, sec: Mapping[str, Any], prefix: str, name: str) -> Path | None:
        text = self.string(sec, prefix, name)
        if text is None:
            return None
        return self.resolve(text)

    def resolve(self, text: str) -> Path:
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.base_dir / path
        return Path(os.path.normpath(path))

    def url(
        self,
        sec: Mapping[str, Any],
        prefix: str,
        name: str,
        default: str | None,
        *,
        http: str,
    ) -> str | None:
        """A URL; ``http`` is "never", "loopback" (http only on loopback) or "warn"."""
        key = join(prefix, name)
        value = sec.get(name)
        if value is None or value is UNRESOLVED:
            return default
        got = self.describe(value, key)
        if not isinstance(value, str) or not value.strip():
            self.report(key, f"expected an https:// URL, got {got}")
            return default
        text = str(value).strip()
        try:
            parts = urlsplit(text)
            _ = parts.port
        except ValueError:
            self.report(key, f"expected an https:// URL, got {got} (not a valid URL)")
            return default
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            self.report(key, f"expected an https:// URL with a host name, got {got}")
            return default
        if parts.username is not None or parts.password is not None:
            self.report(
                key,
                "expected a URL without user name or password (credentials belong in "
                "their own keys), got a URL with credentials",
            )
            return default
        if parts.query or parts.fragment:
            self.report(key, f"expected a URL without ?query or #fragment, got {got}")
            return default
        if scheme == "http" and not _is_loopback(parts.hostname):
            if http == "never":
                self.report(key, f"expected an https:// URL, got {got}")
                return default
            if http == "loopback":
                self.report(
                    key,
                    "expected an https:// URL (http:// only on loopback: 127.0.0.0/8, "
                    f"localhost, [::1]), got {got}",
                )
                return default
            self.warn(
                key, "uses plain http:// to a host that is not loopback; tokens travel unencrypted"
            )
        elif scheme == "http" and http == "never":
            self.report(key, f"expected an https:// URL, got {got}")
            return default
        return text.rstrip("/")

    def string_list(self, sec: Mapping[str, Any], prefix: str, name: str) -> tuple[str, ...]:
        key = join(prefix, name)
        value = sec.get(name)
        if value is None or value is UNRESOLVED:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.report(key, f"expected a list of strings, got {self.describe(value, key)}")
            return ()
        items: list[str] = []
        for index, item in enumerate(value):
            item_key = f"{key}[{index}]"
            if item is UNRESOLVED or (item is None and item_key in self.emptied):
                continue
            if not isinstance(item, str) or not item.strip():
                self.report(
                    item_key,
                    f"expected a non-empty string, got "
                    f"{self.describe(item, item_key)}{quote_hint(item)}",
                )
                continue
            items.append(str(item).strip())
        return tuple(items)

    def id_list(self, sec: Mapping[str, Any], prefix: str, name: str) -> tuple[int, ...]:
        key = join(prefix, name)
        value = sec.get(name)
        if value is None or value is UNRESOLVED:
            return ()
        if not isinstance(value, list):
            value = [value]
        ids: list[int] = []
        for index, item in enumerate(value):
            item_key = f"{key}[{index}]"
            if item is UNRESOLVED or (item is None and item_key in self.emptied):
                continue
            number = self.as_int(item)
            if number is None or number < 1:
                self.report(
                    item_key,
                    f"expected an ELIZA group id (an integer >= 1), got "
                    f"{self.describe(item, item_key)}{quote_hint(item)}",
                )
                continue
            ids.append(number)
        return tuple(ids)


def _unsendable(text: str, *, header: bool) -> str | None:
    """Why a secret cannot be sent as it is (never quoting it), or ``None``."""
    for char in text:
        if char in "\r\n":
            return "contains a line break; remove it (a value read from a file often ends in one)"
        if unicodedata.category(char) == "Cc":
            return f"contains a control character (U+{ord(char):04X}); remove it"
        if header and not char.isascii():
            return (
                f"contains a non-ASCII character (U+{ord(char):04X}); it is sent in an HTTP "
                "header, which allows ASCII only (copy it again from its source)"
            )
    return None


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _range_text(what: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{what} from {_num(low)} to {_num(high)}"
    if low is not None:
        return f"{what} >= {_num(low)}"
    if high is not None:
        return f"{what} <= {_num(high)}"
    return what


def _is_loopback(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
