"""``python -m magicanimate.demo`` (``make demo``): the entry point of :mod:`magicanimate.tools.offline_demo`."""

import sys

from magicanimate.tools.offline_demo import main

if __name__ == "__main__":
    sys.exit(main())
