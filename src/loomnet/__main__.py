"""``python -m loomnet`` runs the ``loomnet`` command."""

import sys

from .cli import main

sys.exit(main())
