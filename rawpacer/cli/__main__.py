"""``python -m rawpacer.cli``."""

import sys

from rawpacer.cli import main

sys.exit(main())
