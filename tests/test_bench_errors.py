"""Bad names given to a bench script end in one line naming the thing and exit status 2, never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from suite.errors import ConfigError, script_exit_code

ROOT = Path(__file__).resolve().parents[1]


def test_a_user_error_is_one_line_and_status_2_and_other_errors_still_raise(capsys):
    def bad_value():
        raise ConfigError("steps", -1, "give 1 or more")

    assert script_exit_code(bad_value, "demo") == 2
    assert capsys.readouterr().err == "demo: error: steps=-1: give 1 or more\n"
    assert script_exit_code(lambda: None, "demo") == 0
    assert script_exit_code(lambda: 3, "demo") == 3

    def broken():
        raise ZeroDivisionError("a bug, not bad input")

    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        script_exit_code(broken, "demo")


@pytest.mark.parametrize("argv, names", [
    (["convergence.py", "nosuch_task", "--no-run"], "unknown task 'nosuch_task'"),
    (["cpu_precision.py", "--tasks", "image_classification,nosuch_task"], "unknown task 'nosuch_task'"),
    (["executor_overhead.py", "--tasks", "nosuch_task"], "unknown task 'nosuch_task'"),
    (["rl_throughput.py", "--profile", "nosuch_profile"], "unknown profile of task 'atari_rl'"),
])
def test_an_unknown_name_in_a_bench_script_is_one_line(argv, names):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / argv[0]), *argv[1:]], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{argv[0][:-3]}: error: ") and names in last, last
    assert "CPU peak" not in done.stdout  # cpu_precision checks its names before measuring anything


def test_a_bench_flag_that_is_not_spelt_out_is_an_error():
    # `--seed 3` would otherwise be read as `--seeds 3`: three seeds run, where seed 3 was meant
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "convergence.py"), "sentiment", "--seed", "3",
                           "--no-run"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unrecognized arguments: --seed 3" in done.stderr, done.stderr[-2000:]


def test_a_bench_script_whose_reader_left_ends_quietly():
    # `python bench/X.py | head -0`: the reading end is gone before the script's first line
    script = ("import sys\nfrom suite.errors import script_exit_code\n"
              "def main():\n    print('median ...', flush=True)\n"
              "sys.exit(script_exit_code(main, 'demo'))\n")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == "", done.stderr[-2000:]
