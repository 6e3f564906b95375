"""Whether an output folder takes a file, asked by trying (as the atomic writes will)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def can_write_in(folder: Path) -> bool:
    """Create and remove a hidden file in ``folder``: permission bits alone miss a read-only
    file system, ACLs, and root in a folder such as /proc where nobody may create files."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=".deltasync-probe-")
    except OSError:
        return False
    os.close(handle)
    os.unlink(name)
    return True
