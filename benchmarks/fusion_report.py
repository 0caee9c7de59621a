"""Script for ecgreport.fusion (its docstring gives the commands and what it writes)."""

import sys

from ecgreport.fusion import main

if __name__ == "__main__":
    sys.exit(main())
