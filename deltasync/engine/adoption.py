"""After the adoption: once every in-scope user is linked, soft matching has done its work.

seeds/004 recommends ``BlockSoftMatchEnabled`` once the existing accounts are taken over:
soft matching on username or e-mail is only for the first sync, and left on it would let a
new Entra user adopt an unlinked ELIZA account that happens to share an address. The run
report says so once, in the run in which it becomes true (the state meta table remembers it
was said); ``check`` and ``state`` may ask :func:`all_adopted` at any time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from deltasync.engine.ports import Store
from deltasync.engine.settings import EngineSettings
from deltasync.matching import RECOMMENDATION, SOFT_MATCH_HINT
from deltasync.models import Kind, LinkStatus
from deltasync.plan.scope import scope_status


def all_adopted(store: Store, settings: EngineSettings, batch: int = 2000) -> bool:
    """Soft matching is on and took over at least one account, and every in-scope user is
    linked (a sync that only ever created objects has adopted nothing).

    Read a batch of mirrored objects at a time: this runs after every run that changed
    something until it holds, and a 100,000-user tenant's links and objects held at once
    cost ~200 MB.
    """
    if not settings.matching.soft_match:
        return False
    kind = Kind.PERSON if settings.ctx.skip_users else Kind.USER
    if not store.any_link_matched(kind, "soft"):
        return False
    found = False
    for spec in settings.resources:
        after: str | None = None
        while objects := store.dirty_objects(
            spec.name, datetime.now(UTC), everything=True, after=after, limit=batch
        ):
            after = objects[-1].id
            in_scope = [o.id for o in objects if scope_status(o, settings.ctx.scope)[1] is None]
            links = store.links_for(in_scope)
            if not all(
                kind in links.get(i, {}) and links[i][kind].status != LinkStatus.DELETED
                for i in in_scope
            ):
                return False
            found = found or bool(in_scope)
    return found


def recommend_once(store: Store, settings: EngineSettings) -> str | None:
    """The recommendation, the first time :func:`all_adopted` holds (remembered); else None."""
    if not settings.matching.soft_match or store.get_meta(SOFT_MATCH_HINT):
        return None
    if not all_adopted(store, settings):
        return None
    store.set_meta(SOFT_MATCH_HINT, "1")
    return RECOMMENDATION
