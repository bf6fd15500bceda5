"""``python -m magicanimate.training …`` = ``magicanimate train …`` (for ``accelerate launch -m``)."""

from __future__ import annotations

import sys

from ..cli_train import main

if __name__ == "__main__":
    sys.exit(main())
