"""Run the whole dlbench benchmark: `python run_all.py [--profile quick] [--tasks a,b] ...`.

`python run_all.py --help` lists every flag. Under `torchrun --nproc_per_node=N`
each run is data-parallel and rank 0 writes the records.
"""
import sys

from suite.cli import main_run_all

if __name__ == "__main__":
    sys.exit(main_run_all())
