"""The command line, ``python -m unixlib <command>``: thin over :mod:`unixlib.experiments`."""
