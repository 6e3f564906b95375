"""``python -m deltasync``."""

from deltasync.cli import main

main()
