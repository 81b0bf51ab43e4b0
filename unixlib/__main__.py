"""``python -m unixlib ...``: the command line (``unixlib.cli``)."""

import sys

from unixlib.cli.main import main

sys.exit(main())
