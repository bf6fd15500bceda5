"""``python -m magicanimate.bench``: the entry point of :mod:`magicanimate.tools.benchmark`."""

import sys

from magicanimate.tools.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
