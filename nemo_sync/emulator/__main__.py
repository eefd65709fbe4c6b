"""``python -m nemo_sync.emulator``."""

import sys

from nemo_sync.emulator._cli import main

if __name__ == "__main__":
    sys.exit(main())
