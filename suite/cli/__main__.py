"""`python -m suite.cli ...`: the `dlbench` command."""
import sys

from suite.cli import main

sys.exit(main())
