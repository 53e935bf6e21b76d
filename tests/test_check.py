"""dlbench check: one line per problem, the same rules compare applies."""
import json

from tests.helpers import make_record, write_all

from suite import cli
from suite.results import check, compare


def test_assess_levels():
    assert check.assess(make_record()) == ([], [])
    unfit, _ = check.assess(make_record(status="failed", ttt=None))
    assert unfit == ["status failed (RuntimeError: boom)"]
    _, notes = check.assess(make_record(ttt=None))
    assert notes == ["its step budget ran out before test/accuracy reached 0.8: counted as not reached"]
    _, notes = check.assess(make_record(ttt=None, stop_reason="time"))
    assert notes[0].startswith("its time cap ran out")
    unfit, _ = check.assess({**make_record(), "hardware": {"device": "cpu"}, "software": {}})
    assert unfit == ["missing hardware fingerprint (hardware.label)", "missing software fingerprint (software.torch)"]
    unfit, _ = check.assess(make_record(target=None, status="skipped", ttt=None))
    assert len(unfit) == 2 and unfit[1].startswith("no target")
    unfit, _ = check.assess(make_record(time_to_target_s=None))
    assert unfit == ["reached_target is true but time_to_target_s is None, not a time in seconds"]


def test_check_prints_one_line_each_and_exit_status(tmp_path, capsys):
    recs = [make_record(seed=0), make_record(seed=1, ttt=None), make_record(seed=2, status="interrupted", ttt=None),
            make_record(seed=3, unit="env_steps/s")]
    folder = write_all(tmp_path / "r", recs)
    write_all(tmp_path / "copy", recs[:1])
    (folder / "runs" / "bad.json").write_text("{not json")
    (folder / "runs" / "v9.json").write_text(json.dumps({**make_record(seed=9), "schema": 9}))
    status = cli.main(["check", str(folder), str(tmp_path / "copy")])
    lines = capsys.readouterr().out.strip().splitlines()
    assert status == 1
    kinds = [line.split()[0] for line in lines[:-1]]
    assert sorted(kinds) == ["duplicate", "invalid", "invalid", "mixed", "not", "unfit"]
    assert lines[-1] == "check: 5 records, 4 fit for comparison, 1 unfit, 2 invalid files"
    unfit = [line for line in lines if line.startswith("unfit")][0]
    assert "s2" in unfit or "interrupted" in unfit
    # compare applies the same rules: the interrupted run is left out, the not-reached one is kept
    frame = compare.pool([folder]).frame
    assert sorted(frame["seed"]) == [0, 1, 3]


def test_check_clean_and_empty(tmp_path, capsys):
    folder = write_all(tmp_path / "r", [make_record(seed=0), make_record(seed=1, ttt=None)])
    assert cli.main(["check", str(folder)]) == 0  # a run that missed its target is fit (counted as not reached)
    (tmp_path / "empty").mkdir()
    assert cli.main(["check", str(tmp_path / "empty")]) == 2
    out = capsys.readouterr().out
    assert "no dlbench records" in out and "Traceback" not in out
