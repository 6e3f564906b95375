"""Files deltasync writes for people and monitoring: the user/plan export and the metrics file.

Both modules take plain data (rows, the JSON run report) so they stay independent of the
engine and can be tested on their own. The writers import openpyxl and prometheus_client, so
they load only when a file is written (`paths` checks a name without them).
"""

from __future__ import annotations

from typing import Any

from deltasync.export.paths import check_export_path, check_metrics_path

__all__ = ["check_export_path", "check_metrics_path", "write_metrics", "write_users"]


def __getattr__(name: str) -> Any:
    if name == "write_users":
        from deltasync.export.excel import write_users

        return write_users
    if name == "write_metrics":
        from deltasync.export.metrics import write_metrics

        return write_metrics
    raise AttributeError(name)
