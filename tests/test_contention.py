"""How busy the machine was during a run: the record's `host` field, and where it is flagged."""
from __future__ import annotations

import collections
import subprocess
import sys
import time

import psutil
import torch
from tests.helpers import make_record, write_all

from suite import cli
from suite.running.allocator import keep_freed_memory
from suite.running.benchmark import summary_line
from suite.measuring.contention import HostLoad, busy_note, busy_seconds, other_share
from suite.running.runner import run_one
from tests.toy_tasks import ToyLinear


def test_other_share_is_the_busy_time_not_ours_over_the_machine_time():
    assert other_share(system_busy_s=3.0, own_s=1.0, wall_s=2.0, cpus=2) == 0.5
    assert other_share(1.0, 1.2, 2.0, 2) == 0.0, "clock skew between the two counters never goes negative"
    assert other_share(9.0, 0.0, 2.0, 2) == 1.0
    assert other_share(1.0, 0.0, 0.0, 2) == 0.0


def test_busy_seconds_counts_steal_but_not_idle_iowait_or_guest():
    Times = collections.namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")
    snapshot = Times(user=5, nice=1, system=2, idle=100, iowait=7, irq=0.5, softirq=0.5, steal=3, guest=4,
                     guest_nice=1)
    assert busy_seconds(snapshot) == 12


def test_a_process_burning_a_core_shows_up_as_other_load():
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start
        with HostLoad() as host:
            time.sleep(1.5)
    finally:
        burner.kill()
        burner.wait()
    share = host.summary()["other_cpu_share"]
    # one busy core of this machine's CPUs, allowing for half of it lost to scheduling
    assert share >= 0.5 / (psutil.cpu_count() or 1)


def test_every_record_says_how_busy_the_host_was_during_training(smoke_options, monkeypatch):
    """The record's `host` is what HostLoad measured around the training, and only around it."""
    from suite.running import runner

    entered = []

    class Measured(HostLoad):
        def __enter__(self):
            entered.append(True)
            return super().__enter__()

        def summary(self):
            measured = super().summary()
            return measured and {**measured, "other_cpu_share": 0.4}

    monkeypatch.setattr(runner, "HostLoad", Measured)
    record = run_one(ToyLinear, "linear", 0, smoke_options, log=lambda _m: None)
    assert entered == [True]
    assert record["host"] == {"other_cpu_share": 0.4, "torch_threads": torch.get_num_threads(),
                              "malloc": keep_freed_memory()}, "and what the memory allocator did (suite.running.allocator)"
    assert "used 40% of the CPU" in busy_note(record), "a busy share above 0.25 is flagged"


def test_a_busy_run_is_flagged_by_check_and_the_summary_line(tmp_path, capsys):
    quiet, busy = make_record(seed=0, host={"other_cpu_share": 0.05}), make_record(seed=1, host={"other_cpu_share": 0.6})
    data_parallel = make_record(seed=2, host={"other_cpu_share": 0.9}, world_size=2)
    assert busy_note(quiet) is None and busy_note(data_parallel) is None, "under torchrun the other ranks are ours"
    assert "60% of the CPU" in busy_note(busy)
    assert "warning: other processes used 60%" in summary_line(busy)
    folder = write_all(tmp_path / "r", [quiet, busy, data_parallel])
    assert cli.main(["check", str(folder)]) == 0, "a busy run is counted, only flagged"
    flagged = [line for line in capsys.readouterr().out.splitlines() if line.startswith("busy host")]
    assert len(flagged) == 1 and "s1" in flagged[0]
