"""``python -m bpcore.benchmark``: see :func:`bpcore.benchmark.main`."""
import sys

from . import main

sys.exit(main())
