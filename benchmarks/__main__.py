"""``python -m benchmarks``: run every workload and print one table (see ``run.py``)."""

import sys

from benchmarks.run import main

sys.exit(main())
