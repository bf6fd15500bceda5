"""``python -m magicanimate`` runs the command line."""

import sys

from magicanimate.cli.main import main

sys.exit(main())
