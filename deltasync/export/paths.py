"""Whether an output path can take a file, checked before a run, without the writers' imports.

`sync` checks `--export-excel` and `--metrics-file` before its first request; importing
openpyxl or prometheus_client for that would cost every hourly run ~0.1 s.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from deltasync.errors import UsageError

SUFFIXES = (".xlsx", ".csv")


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


def check_export_path(path: Path) -> None:
    """Raise UsageError unless ``path`` can take an export; call it before a sync starts.

    A bad ``--export-excel`` name then fails in a second, not after an hour-long run.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        what = f"a '{path.suffix}' file" if path.suffix else "a file without a suffix"
        raise UsageError(f"cannot export to {path}: {what}; name it .xlsx (Excel) or .csv")
    check_file_in_writable_folder(path, "cannot export to")


def check_metrics_path(path: Path) -> None:
    """Raise UsageError unless ``path`` can take the metrics file; call it before a run."""
    check_file_in_writable_folder(path, "cannot write metrics to")


def check_file_in_writable_folder(path: Path, cannot: str) -> None:
    """Raise UsageError, starting ``cannot`` (e.g. "cannot export to"), unless ``path`` names
    a file in an existing folder this process may create files in."""
    if path.is_dir():
        raise UsageError(f"{cannot} {path}: it is a folder; give a file name")
    parent = path.parent
    if not parent.exists():
        raise UsageError(f"{cannot} {path}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise UsageError(f"{cannot} {path}: {parent} is not a folder")
    if not can_write_in(parent):
        raise UsageError(f"{cannot} {path}: the folder {parent} is not writable")
