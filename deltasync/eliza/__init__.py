"""The ELIZA side of the sync: the REST client and its dry-run stand-in."""

from __future__ import annotations

from deltasync.eliza.client import BlockedWrite, DryRunEliza, ElizaClient, Resource

__all__ = ["BlockedWrite", "DryRunEliza", "ElizaClient", "Resource"]
