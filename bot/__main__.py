import sys

from bot.cli import main

# Guarded: worker processes (the folder source's parse pool) import the main module again.
if __name__ == "__main__":
    sys.exit(main())
