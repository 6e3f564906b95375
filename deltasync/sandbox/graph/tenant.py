"""The simulated tenant's directory: users, groups, managers, members, and the change log.

Every mutation appends a :class:`Change` with a sequence number; delta tokens are positions
in that log (see :mod:`deltasync.sandbox.graph.delta`).
"""

from __future__ import annotations

import copy
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from deltasync.sandbox.graph.schema import GROUPS, USERS, Schema

ChangeOp = Literal["create", "update", "soft_delete", "restore", "hard_delete"]


@dataclass(frozen=True)
class Change:
    """One entry of the tenant's change log; delta tokens are positions in this log."""

    seq: int
    resource: str
    id: str
    op: ChangeOp
    props: frozenset[str] = frozenset()
    old_manager: str | None = None
    members_added: tuple[str, ...] = ()
    members_removed: tuple[str, ...] = ()


@dataclass
class Obj:
    """One user or group as the directory holds it (``deleted_at`` set while soft-deleted)."""

    id: str
    schema: Schema
    props: dict[str, Any]
    manager: str | None = None
    members: dict[str, None] = field(default_factory=dict)
    deleted_at: str | None = None


class Tenant:
    """An in-memory Entra directory; ``seed`` makes the object ids, ``now`` the timestamps."""

    def __init__(self, *, seed: int, now: Callable[[], float]) -> None:
        self._lock = threading.RLock()
        self._now = now
        self._id_rng = random.Random(f"ids:{seed}")
        self._objs: dict[str, Obj] = {}
        self._kinds: dict[str, str] = {}
        self._log: list[Change] = []

    @property
    def changes(self) -> tuple[Change, ...]:
        """The change log, oldest first."""
        with self._lock:
            return tuple(self._log)

    # ------------------------------------------------------------------ users

    def add_user(self, **props: Any) -> str:
        """Create a user; returns its id. ``manager=<id>`` sets the manager at creation."""
        with self._lock:
            manager = props.pop("manager", None)
            obj_id = str(props.pop("id", None) or self._new_id())
            if obj_id in self._kinds:
                raise ValueError(f"object id {obj_id} is already used")
            data = USERS.check(props)
            if not data.get("userPrincipalName"):
                raise ValueError("userPrincipalName is required")
            data.setdefault("accountEnabled", True)
            data.setdefault("userType", "Member")
            if data.get("displayName") is None:
                names = [data.get("givenName"), data.get("surname")]
                shown = " ".join(str(n) for n in names if n)
                data["displayName"] = shown or str(data["userPrincipalName"]).split("@")[0]
            if data.get("proxyAddresses") is None and data.get("mail"):
                data["proxyAddresses"] = [f"SMTP:{data['mail']}"]
            if data.get("createdDateTime") is None:
                data["createdDateTime"] = self._iso_now()
            obj = Obj(obj_id, USERS, USERS.complete(data))
            if manager is not None:
                self._require(manager, USERS)
                obj.manager = manager
            self._objs[obj_id] = obj
            self._kinds[obj_id] = USERS.resource
            self._append(USERS, obj_id, "create", frozenset(obj.props) | {"manager"})
            return obj_id

    def update_user(self, user_id: str, **props: Any) -> None:
        """Change properties (``None`` clears); logs only the properties that really changed.

        Changing ``mail`` also rewrites ``proxyAddresses`` (new primary ``SMTP:``, the old
        one kept as an ``smtp:`` alias), as Exchange does, unless proxyAddresses is given.
        """
        with self._lock:
            obj = self._require(user_id, USERS)
            if "manager" in props:
                self._set_manager(obj, props.pop("manager"))
            data = USERS.check(props)
            if "mail" in data and "proxyAddresses" not in data and data["mail"]:
                data["proxyAddresses"] = _proxy_after_mail_change(obj, str(data["mail"]))
            self._apply(obj, data)

    def set_manager(self, user_id: str, manager_id: str | None) -> None:
        """Set or (with None) remove a user's manager."""
        with self._lock:
            self._set_manager(self._require(user_id, USERS), manager_id)

    def disable_user(self, user_id: str) -> None:
        """``accountEnabled = false``: an ordinary property change, not a removal."""
        self.update_user(user_id, accountEnabled=False)

    def enable_user(self, user_id: str) -> None:
        """``accountEnabled = true``."""
        self.update_user(user_id, accountEnabled=True)

    def user(self, user_id: str) -> dict[str, Any]:
        """A copy of one user (soft-deleted too, with ``deletedDateTime``); KeyError if gone."""
        with self._lock:
            obj = self._objs.get(user_id)
            if obj is None or obj.schema is not USERS:
                raise KeyError(user_id)
            return self._export(obj)

    def users(self) -> list[dict[str, Any]]:
        """Copies of every user that is not deleted, in creation order."""
        with self._lock:
            return [self._export(o) for o in self._objs.values() if self._live(o, USERS)]

    def deleted_users(self) -> list[dict[str, Any]]:
        """Copies of the soft-deleted users (the recycle bin)."""
        with self._lock:
            return [
                self._export(o)
                for o in self._objs.values()
                if o.schema is USERS and o.deleted_at is not None
            ]

    # ------------------------------------------------------------------ groups

    def add_group(self, *, members: Iterable[str] = (), **props: Any) -> str:
        """Create a group (``displayName`` required) with optional initial members."""
        with self._lock:
            obj_id = str(props.pop("id", None) or self._new_id())
            if obj_id in self._kinds:
                raise ValueError(f"object id {obj_id} is already used")
            data = GROUPS.check(props)
            if not data.get("displayName"):
                raise ValueError("displayName is required")
            data.setdefault("securityEnabled", True)
            data.setdefault("mailEnabled", False)
            if data.get("createdDateTime") is None:
                data["createdDateTime"] = self._iso_now()
            obj = Obj(obj_id, GROUPS, GROUPS.complete(data))
            for member in members:
                if member not in self._objs:
                    raise KeyError(member)
                obj.members[member] = None
            self._objs[obj_id] = obj
            self._kinds[obj_id] = GROUPS.resource
            self._append(GROUPS, obj_id, "create", frozenset(obj.props) | {"members"})
            return obj_id

    def update_group(self, group_id: str, **props: Any) -> None:
        """Change group properties (``None`` clears)."""
        with self._lock:
            obj = self._require(group_id, GROUPS)
            self._apply(obj, GROUPS.check(props))

    def add_member(self, group_id: str, member_id: str) -> None:
        """Add a direct member (user or group)."""
        with self._lock:
            group = self._require(group_id, GROUPS)
            if member_id not in self._objs:
                raise KeyError(member_id)
            if member_id not in group.members:
                group.members[member_id] = None
                self._append(GROUPS, group_id, "update", frozenset({"members"}), added=(member_id,))

    def remove_member(self, group_id: str, member_id: str) -> None:
        """Remove a direct member."""
        with self._lock:
            group = self._require(group_id, GROUPS)
            if member_id in group.members:
                del group.members[member_id]
                self._append(
                    GROUPS, group_id, "update", frozenset({"members"}), removed=(member_id,)
                )

    def group(self, group_id: str) -> dict[str, Any]:
        """A copy of one group with its ``members`` ids; KeyError if gone."""
        with self._lock:
            obj = self._objs.get(group_id)
            if obj is None or obj.schema is not GROUPS:
                raise KeyError(group_id)
            return self._export(obj)

    def groups(self) -> list[dict[str, Any]]:
        """Copies of every group that is not deleted."""
        with self._lock:
            return [self._export(o) for o in self._objs.values() if self._live(o, GROUPS)]

    # ------------------------------------------------------------------ deletion

    def soft_delete(self, object_id: str) -> None:
        """Move to deleted items (``@removed`` reason ``changed``); :meth:`restore` undoes it.

        Only users and Microsoft 365 groups (``groupTypes`` contains ``Unified``) can be
        soft-deleted; security groups go straight to :meth:`hard_delete` in Entra.
        """
        with self._lock:
            obj = self._objs.get(object_id)
            if obj is None or obj.deleted_at is not None:
                raise KeyError(object_id)
            if obj.schema is GROUPS and "Unified" not in (obj.props.get("groupTypes") or []):
                raise ValueError("security groups cannot be soft-deleted; use hard_delete")
            obj.deleted_at = self._iso_now()
            self._append(obj.schema, object_id, "soft_delete")

    def restore(self, object_id: str) -> None:
        """Restore a soft-deleted object; delta shows it as newly created, no annotation."""
        with self._lock:
            obj = self._objs.get(object_id)
            if obj is None or obj.deleted_at is None:
                raise KeyError(object_id)
            obj.deleted_at = None
            self._append(obj.schema, object_id, "restore", frozenset(obj.props))

    def hard_delete(self, object_id: str) -> None:
        """Delete permanently (``@removed`` reason ``deleted``), soft-deleted or not.

        The object leaves every group it was in, and its direct reports lose their manager.
        """
        with self._lock:
            obj = self._objs.pop(object_id, None)
            if obj is None:
                raise KeyError(object_id)
            self._append(obj.schema, object_id, "hard_delete")
            for other in self._objs.values():
                if object_id in other.members:
                    del other.members[object_id]
                    self._append(
                        GROUPS, other.id, "update", frozenset({"members"}), removed=(object_id,)
                    )
                if other.manager == object_id:
                    other.manager = None
                    self._append(
                        USERS, other.id, "update", frozenset({"manager"}), old_manager=object_id
                    )

    # ------------------------------------------------------------------ internals

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._id_rng.getrandbits(128), version=4))

    def _iso_now(self) -> str:
        return datetime.fromtimestamp(self._now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def _live(obj: Obj, schema: Schema) -> bool:
        return obj.schema is schema and obj.deleted_at is None

    def _require(self, object_id: str, schema: Schema) -> Obj:
        obj = self._objs.get(object_id)
        if obj is None or obj.schema is not schema:
            raise KeyError(object_id)
        if obj.deleted_at is not None:
            raise ValueError(f"{object_id} is deleted; restore it first")
        return obj

    def _apply(self, obj: Obj, data: Mapping[str, Any]) -> None:
        changed = {name for name, value in data.items() if obj.props.get(name) != value}
        for name in changed:
            obj.props[name] = copy.deepcopy(data[name])
        if changed:
            self._append(obj.schema, obj.id, "update", frozenset(changed))

    def _set_manager(self, obj: Obj, manager_id: str | None) -> None:
        if manager_id is not None:
            if manager_id == obj.id:
                raise ValueError("a user cannot be their own manager")
            self._require(manager_id, USERS)
        if obj.manager != manager_id:
            old, obj.manager = obj.manager, manager_id
            self._append(USERS, obj.id, "update", frozenset({"manager"}), old_manager=old)

    def _append(
        self,
        schema: Schema,
        object_id: str,
        op: ChangeOp,
        props: frozenset[str] = frozenset(),
        *,
        old_manager: str | None = None,
        added: tuple[str, ...] = (),
        removed: tuple[str, ...] = (),
    ) -> None:
        self._log.append(
            Change(
                seq=len(self._log) + 1,
                resource=schema.resource,
                id=object_id,
                op=op,
                props=props,
                old_manager=old_manager,
                members_added=added,
                members_removed=removed,
            )
        )

    def _export(self, obj: Obj) -> dict[str, Any]:
        out: dict[str, Any] = {"id": obj.id, **copy.deepcopy(obj.props)}
        if obj.schema is USERS:
            out["manager"] = obj.manager
        else:
            out["members"] = list(obj.members)
        if obj.deleted_at is not None:
            out["deletedDateTime"] = obj.deleted_at
        return out


def _proxy_after_mail_change(obj: Obj, new_mail: str) -> list[str]:
    """Exchange's rewrite: the new mail becomes the primary ``SMTP:``, old ones stay aliases."""
    current = [str(a) for a in obj.props.get("proxyAddresses") or []]
    addresses = [f"SMTP:{new_mail}"]
    for address in current:
        plain = address.split(":", 1)[-1]
        if plain.lower() == new_mail.lower():
            continue
        kind = address.split(":", 1)[0].lower() if ":" in address else "smtp"
        entry = f"{kind}:{plain}"
        if entry.lower() not in (a.lower() for a in addresses):
            addresses.append(entry)
    return addresses
