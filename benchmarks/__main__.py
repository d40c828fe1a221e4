import os
import sys

from benchmarks.cli import main

if __name__ == "__main__":  # spawned worker processes import this module without running it
    try:
        sys.exit(main())
    except BrokenPipeError:  # `python -m benchmarks list | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
