"""``python -m unisandbox.cli``: the ``unisandbox`` command."""

import sys

from .main import main

sys.exit(main())
