"""``python -m loomnet`` runs the ``loomnet`` command."""

import sys

from .cli.main import main

sys.exit(main())
