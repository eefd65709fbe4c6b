"""``python -m nemo_sync.emulator``."""

import sys

from nemo_sync.emulator._server_options import main

if __name__ == "__main__":
    sys.exit(main())
