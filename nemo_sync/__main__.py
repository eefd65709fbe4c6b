"""``python -m nemo_sync`` runs the ``nemo-sync`` command."""

import sys

from nemo_sync.cli import main

sys.exit(main())
