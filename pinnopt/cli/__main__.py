"""``python -m pinnopt.cli``: the ``pinnopt`` command."""
import sys

from pinnopt.cli import main

sys.exit(main())
