"""Entry point: python -m console.sandbox.sidecar --app-id ... (see cli.py)."""

import sys

from console.sandbox.sidecar.cli import main

sys.exit(main())
