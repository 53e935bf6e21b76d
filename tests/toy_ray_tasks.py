"""Toy tasks whose worker process dies mid-run, for the Ray executor's fault tests
(`--tasks-from tests.toy_ray_tasks`; never auto-registered).

`toy_killed` kills its own process (SIGKILL) while loading data, on every attempt (each
attempt adds a line to `toy_killed.attempts` in the data folder);
`toy_killed_once` does so on its first attempt only (a marker file in the data
folder remembers it), so Ray's one retry finishes it. `toy_ray_slow` loads slowly, so a cluster's
runs spread over its nodes.
"""
from __future__ import annotations

import os
import signal
import time

from suite import register_task
from tests.toy_tasks import ToyLinear


class ToyKilled(ToyLinear):
    name = "toy_killed"

    def load(self, split):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "toy_killed.attempts", "a") as attempts:  # one line per attempt
            attempts.write(f"{os.getpid()}\n")
        os.kill(os.getpid(), signal.SIGKILL)


class ToyKilledOnce(ToyLinear):
    name = "toy_killed_once"

    def load(self, split):
        marker = self.data_dir / "toy_killed_once.attempted"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().load(split)


class ToyRaySlow(ToyLinear):
    """Takes 0.75 s to load, so that a node stays busy while others are free."""

    name = "toy_ray_slow"

    def load(self, split):
        time.sleep(0.75)
        return super().load(split)


for _cls in (ToyKilled, ToyKilledOnce, ToyRaySlow):
    register_task(_cls)
