"""``deltasync sandbox edit``: change a running sandbox's tenant by hand, through Graph's writes.

The editor is an ordinary Graph client: it reads what ``sandbox serve`` wrote into its folder
(``entra_sync.yaml`` for the addresses and the app, ``sandbox.env`` for the client secret,
``ca.pem`` for the token endpoint's TLS), gets a token with the client-credentials grant and
sends the same ``PATCH``/``DELETE``/``POST`` requests a Graph admin tool would. So whatever it
changes shows up in the next ``deltasync sync``'s delta round like a change made in Entra.
"""

from __future__ import annotations

import difflib
import json
import shlex
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx
import yaml

from deltasync.sandbox.graph.schema import USERS
from deltasync.sandbox.graph.writes import READ_ONLY
from deltasync.sandbox.provision import CLIENT_SECRET_VAR

CONFIG_NAME: Final = "entra_sync.yaml"
ENV_NAME: Final = "sandbox.env"
# action → the names of its arguments (shown in usage errors and `--help`)
ACTIONS: Final[dict[str, tuple[str, ...]]] = {
    "disable": ("USER",),
    "enable": ("USER",),
    "rename": ("USER", "NEW_UPN"),
    "set": ("USER", "PROPERTY", "VALUE"),
    "delete": ("USER",),
    "restore": ("USER",),
    "add-member": ("GROUP", "USER"),
    "remove-member": ("GROUP", "USER"),
}
_TIMEOUT_S: Final = 10.0


class EditError(Exception):
    """An edit that cannot be made; ``usage`` when the command line (or folder) is at fault."""

    def __init__(self, message: str, *, usage: bool) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class Target:
    """Where a running sandbox is and how to sign in to it, as ``sandbox serve`` wrote it."""

    directory: Path
    graph_url: str
    token_url: str
    client_id: str
    client_secret: str
    ca_path: Path

    @property
    def scope(self) -> str:
        parts = urlsplit(self.graph_url)
        return f"{parts.scheme}://{parts.netloc}/.default"


def read_target(directory: Path, env: dict[str, str] | None = None) -> Target:
    """The sandbox in ``directory``; EditError (usage) when the folder holds none."""
    folder = Path(directory).resolve()
    config_path = folder / CONFIG_NAME
    start = f"start one with: `sandbox serve --dir {directory}`"
    if not config_path.is_file():
        raise EditError(f"no sandbox in {folder}: {CONFIG_NAME} is missing ({start})", usage=True)
    try:
        entra = (yaml.safe_load(config_path.read_text(encoding="utf-8")) or {})["entra"]
        authority = str(entra["authority_host"]).rstrip("/")
        target_parts = (str(entra["graph_url"]), str(entra["tenant_id"]), str(entra["client_id"]))
        ca = Path(str(entra["ca_bundle"]))
    except (KeyError, TypeError, yaml.YAMLError) as exc:
        raise EditError(
            f"{config_path} is not a sandbox config (no entra.{exc}); {start}", usage=True
        ) from None
    secrets = _read_env_file(folder / ENV_NAME) or dict(env or {})
    secret = secrets.get(CLIENT_SECRET_VAR)
    if not secret:
        raise EditError(
            f"no client secret for the sandbox in {folder}: {ENV_NAME} is missing or does not "
            f"set {CLIENT_SECRET_VAR} ({start})",
            usage=True,
        )
    graph_url, tenant_id, client_id = target_parts
    return Target(
        directory=folder,
        graph_url=graph_url.rstrip("/"),
        token_url=f"{authority}/{tenant_id}/oauth2/v2.0/token",
        client_id=client_id,
        client_secret=secret,
        ca_path=ca if ca.is_absolute() else folder / ca,
    )


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            words = words[1:]
        for word in words:
            name, sep, value = word.partition("=")
            if sep:
                found[name] = value
    return found


class Editor:
    """Makes one edit against the sandbox at ``target``; :meth:`run` returns what changed."""

    def __init__(self, target: Target, *, transport: httpx.BaseTransport | None = None) -> None:
        self.target = target
        context = ssl.create_default_context(cafile=str(target.ca_path))
        self._http = httpx.Client(timeout=_TIMEOUT_S, verify=context, transport=transport)
        self._token: str | None = None

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ actions

    def run(self, action: str, args: list[str]) -> str:
        """Make the edit; returns one line saying what changed."""
        names = ACTIONS.get(action)
        if names is None:
            raise EditError(f"unknown action {action!r}; one of: {', '.join(ACTIONS)}", usage=True)
        if len(args) != len(names):
            raise EditError(f"usage: `sandbox edit --dir D {action} {' '.join(names)}`", usage=True)
        handlers: dict[str, Callable[..., str]] = {
            "disable": lambda u: self._enable(u, False),
            "enable": lambda u: self._enable(u, True),
            "rename": self._rename,
            "set": self._set,
            "delete": self._delete,
            "restore": self._restore,
            "add-member": lambda g, u: self._membership(g, u, add=True),
            "remove-member": lambda g, u: self._membership(g, u, add=False),
        }
        return handlers[action](*args)

    def _enable(self, key: str, enabled: bool) -> str:
        user = self._user(key, "accountEnabled")
        verb = "enabled" if enabled else "disabled"
        if user.get("accountEnabled") is enabled:
            return f"{user['userPrincipalName']} is already {verb}; nothing changed"
        self._send("PATCH", f"/users/{user['id']}", {"accountEnabled": enabled})
        return f"{verb} {user['userPrincipalName']} (accountEnabled → {json.dumps(enabled)})"

    def _rename(self, key: str, new_upn: str) -> str:
        user = self._user(key)
        self._send("PATCH", f"/users/{user['id']}", {"userPrincipalName": new_upn})
        return f"renamed {user['userPrincipalName']} → {new_upn} (userPrincipalName; mail kept)"

    def _set(self, key: str, prop: str, raw: str) -> str:
        name = _settable(prop)
        value = _parse_value(name, raw)
        user = self._user(key, name)
        old = user.get(name)
        self._send("PATCH", f"/users/{user['id']}", {name: value})
        if old == value:
            return f"{user['userPrincipalName']}: {name} is already {_shown(value)}; unchanged"
        return f"{user['userPrincipalName']}: {name} {_shown(old)} → {_shown(value)}"

    def _delete(self, key: str) -> str:
        user = self._user(key)
        self._send("DELETE", f"/users/{user['id']}")
        return (
            f"deleted {user['userPrincipalName']} (soft delete: in deleted items, "
            f"`sandbox edit restore {user['userPrincipalName']}` brings it back)"
        )

    def _restore(self, key: str) -> str:
        user = self._deleted_user(key)
        self._send("POST", f"/directory/deletedItems/{user['id']}/restore")
        return f"restored {user['userPrincipalName']} from deleted items"

    def _membership(self, group_key: str, user_key: str, *, add: bool) -> str:
        group = self._group(group_key)
        user = self._user(user_key)
        upn, name = user["userPrincipalName"], group["name"]
        shown = f"{upn} {'to' if add else 'from'} group {name!r}"
        if add:
            ref = {"@odata.id": f"{self.target.graph_url}/directoryObjects/{user['id']}"}
            self._send("POST", f"/groups/{group['id']}/members/$ref", ref)
            return f"added {shown}"
        path = f"/groups/{group['id']}/members/{user['id']}/$ref"
        response = self._request("DELETE", path, allow=(404,))
        if response.status_code == 404:
            raise EditError(f"{upn} is not a member of group {name!r}", usage=True)
        return f"removed {shown}"

    # ------------------------------------------------------------------ lookups

    def _user(self, key: str, *extra: str) -> dict[str, Any]:
        select = ",".join(("id", "userPrincipalName", *extra))
        found = self._lookup("/users", key, select)
        if found is None:
            hint = ""
            if self._lookup("/directory/deletedItems/microsoft.graph.user", key, "id"):
                hint = f" ({key} is deleted; `sandbox edit restore {key}` brings it back)"
            raise EditError(f"no user {key!r} in the sandbox tenant{hint}", usage=True)
        return found

    def _deleted_user(self, key: str) -> dict[str, Any]:
        found = self._lookup("/directory/deletedItems/microsoft.graph.user", key, "id")
        if found is None:
            live = self._lookup("/users", key, "id")
            why = " (it is not deleted)" if live else ""
            raise EditError(f"no deleted user {key!r} in the sandbox tenant{why}", usage=True)
        return found

    def _group(self, key: str) -> dict[str, Any]:
        response = self._request("GET", f"/groups/{quote(key, safe='')}", allow=(404,))
        if response.status_code == 200:
            body = response.json()
            return {"id": body["id"], "name": body.get("displayName") or body["id"]}
        listed = self._request(
            "GET", "/groups", params={"$filter": f"displayName eq '{_quoted(key)}'"}
        ).json()["value"]
        if len(listed) > 1:
            ids = ", ".join(g["id"] for g in listed)
            raise EditError(
                f"{len(listed)} groups are named {key!r}; give an id: {ids}", usage=True
            )
        if not listed:
            raise EditError(f"no group {key!r} (id or displayName) in the sandbox", usage=True)
        return {"id": listed[0]["id"], "name": listed[0].get("displayName") or key}

    def _lookup(self, collection: str, key: str, select: str) -> dict[str, Any] | None:
        """An object by UPN (``$filter``) or id (``GET …/{id}``), None if there is none."""
        if "@" in key:
            body = self._request(
                "GET",
                collection,
                params={"$filter": f"userPrincipalName eq '{_quoted(key)}'", "$select": select},
            ).json()
            values: list[dict[str, Any]] = body["value"]
            return values[0] if values else None
        response = self._request(
            "GET", f"{collection}/{quote(key, safe='')}", params={"$select": select}, allow=(404,)
        )
        return None if response.status_code == 404 else dict(response.json())

    # ------------------------------------------------------------------ HTTP

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        self._request(method, path, json_body=body)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._access_token()}"}
        url = f"{self.target.graph_url}{path}"
        try:
            response = self._http.request(
                method, url, params=params, json=json_body, headers=headers
            )
        except httpx.TransportError as exc:
            raise self._not_running(self.target.graph_url, exc) from None
        if response.is_success or response.status_code in allow:
            return response
        raise EditError(f"{method} {path} failed: {_graph_error(response)}", usage=False)

    def _access_token(self) -> str:
        if self._token is not None:
            return self._token
        form = {
            "grant_type": "client_credentials",
            "client_id": self.target.client_id,
            "client_secret": self.target.client_secret,
            "scope": self.target.scope,
        }
        try:
            response = self._http.post(self.target.token_url, data=form)
        except httpx.TransportError as exc:
            raise self._not_running(self.target.token_url, exc) from None
        if not response.is_success:
            raise EditError(
                f"the sandbox's token endpoint refused the client secret in "
                f"{self.target.directory / ENV_NAME} ({_graph_error(response)}); was the "
                "sandbox restarted by another `sandbox serve`?",
                usage=False,
            )
        self._token = str(response.json()["access_token"])
        return self._token

    def _not_running(self, url: str, exc: Exception) -> EditError:
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        return EditError(
            f"no sandbox runs in {self.target.directory}: nothing answers at {origin} "
            f"({type(exc).__name__}); start it with: `sandbox serve --dir "
            f"{self.target.directory}`",
            usage=False,
        )


def edit(directory: Path, action: str, args: list[str], env: dict[str, str] | None = None) -> str:
    """Make one edit to the sandbox running in ``directory``; returns what changed."""
    if action not in ACTIONS:
        raise EditError(f"unknown action {action!r}; one of: {', '.join(ACTIONS)}", usage=True)
    editor = Editor(read_target(directory, env))
    try:
        return editor.run(action, args)
    finally:
        editor.close()


def _settable(prop: str) -> str:
    known = USERS.canonical(prop)
    settable = [p for p in USERS.properties if p not in READ_ONLY]
    if known is None or known == USERS.relation:
        close = difflib.get_close_matches(prop, settable, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise EditError(
            f"unknown user property {prop!r}{hint}; settable: {', '.join(settable)}", usage=True
        )
    if known in READ_ONLY:
        raise EditError(f"{known} is read-only in Graph and cannot be set", usage=True)
    return known


def _parse_value(name: str, raw: str) -> Any:
    """The JSON value for ``set``: ``null`` clears, booleans and lists where Graph has them."""
    if name in USERS.collections:
        if raw.strip().lower() in ("null", "", "[]"):
            return []
        return [part.strip() for part in raw.split(",") if part.strip()]
    if raw == "null":
        return None
    if name in ("accountEnabled", "onPremisesSyncEnabled"):
        if raw.lower() not in ("true", "false"):
            raise EditError(f"{name} is true or false, not {raw!r}", usage=True)
        return raw.lower() == "true"
    return raw


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)


def _quoted(value: str) -> str:
    return value.replace("'", "''")


def _graph_error(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except ValueError:
        error = None
    if isinstance(error, dict):
        return f"{response.status_code} {error.get('code')}: {error.get('message')}"
    if isinstance(error, str):  # the token endpoint's AADSTS shape
        return f"{response.status_code} {error}"
    return f"HTTP {response.status_code}"
