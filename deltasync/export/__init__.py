"""Files deltasync writes for people and monitoring: the user/plan export and the metrics file.

Both modules take plain data (rows, the JSON run report) so they stay independent of the
engine and can be tested on their own.
"""

from deltasync.export.excel import check_export_path, write_users
from deltasync.export.metrics import check_metrics_path, write_metrics

__all__ = ["check_export_path", "check_metrics_path", "write_metrics", "write_users"]
