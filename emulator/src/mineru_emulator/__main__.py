"""``python -m mineru_emulator``: run the MinerU emulator (see :mod:`.cli`)."""

from __future__ import annotations

import sys

from mineru_emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
