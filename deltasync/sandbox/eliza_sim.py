"""The ELIZA simulator's old import path, kept for code outside the sandbox that still uses it.

New code imports from :mod:`deltasync.sandbox.eliza`.
"""

from deltasync.sandbox.eliza import ElizaSim

__all__ = ["ElizaSim"]
