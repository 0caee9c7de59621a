"""Script for ecgreport.zoo (its docstring gives the commands and what it writes)."""

import sys

from ecgreport.zoo import main

if __name__ == "__main__":
    sys.exit(main())
