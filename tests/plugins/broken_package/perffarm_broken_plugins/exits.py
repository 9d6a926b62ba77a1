"""Calls sys.exit while it is imported (a script registered by mistake)."""

import sys

sys.exit(3)
