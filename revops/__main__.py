"""python -m revops: the command line."""
import sys

from revops.cli import main

sys.exit(main())
