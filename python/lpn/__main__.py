"""``python -m lpn run NAME|all ...``: the same as the ``lpn`` console script."""

import sys

from .cli import main

sys.exit(main())
