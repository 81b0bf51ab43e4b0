"""``python -m unixlib.bench``: see :mod:`unixlib.bench`."""

import sys

from unixlib.bench.run import main

main(sys.argv[1:])
