"""``python -m ML ...``: the ``ML`` command."""

import sys

from ML.cli import main

sys.exit(main())
