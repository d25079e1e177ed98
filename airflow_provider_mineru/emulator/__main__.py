"""``python -m airflow_provider_mineru.emulator``: run the MinerU emulator (see :mod:`.cli`)."""

from __future__ import annotations

import sys

from airflow_provider_mineru.emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
