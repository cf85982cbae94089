"""``python -m unisandbox`` (and ``torchrun -m unisandbox``): the ``unisandbox`` command."""

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
