"""``python -m unisandbox`` (and ``torchrun -m unisandbox``): the ``unisandbox`` command."""

import sys

from .cli.main import main

sys.exit(main())
