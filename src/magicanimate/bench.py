"""``python -m magicanimate.bench``: the entry point of :mod:`magicanimate.tools.bench`."""

import sys

from magicanimate.tools.bench import main

if __name__ == "__main__":
    sys.exit(main())
