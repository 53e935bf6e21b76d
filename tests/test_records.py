"""Atomic writes and the tolerant reader."""
from __future__ import annotations

import json

import pytest

from suite.results import records
from suite.running.config import SuiteOptions
from suite.running.runner import run_one
from tests.helpers import make_record
from tests.toy_tasks import ToyLinear


@pytest.fixture
def one_record(tmp_path):
    opts = SuiteOptions(profile="smoke", device="cpu", results=tmp_path)
    return run_one(ToyLinear, "linear", 0, opts, log=lambda _m: None)


def test_record_has_every_contract_field(one_record):
    assert records.validate(one_record) == []
    for key in ("hardware", "software"):
        assert one_record[key]
    hw = one_record["hardware"]
    assert hw["label"] and hw["cores"] >= 1 and hw["device"] == "cpu"
    assert one_record["software"]["torch"]
    assert one_record["target"] == {"metric": "val/accuracy", "value": 0.95, "higher_is_better": True,
                                    "source": "toy"}


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path, one_record, monkeypatch):
    runs = tmp_path / "runs"
    assert [p.name for p in runs.iterdir()] == [f"{one_record['run_id']}.json"]

    def broken_dump(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(records.json, "dump", broken_dump)
    with pytest.raises(OSError):
        records.write_record({**one_record, "run_id": "second"}, tmp_path)
    assert [p.name for p in runs.iterdir()] == [f"{one_record['run_id']}.json"]


def test_reader_skips_truncated_garbage_and_foreign_files_with_one_warning_each(tmp_path, one_record):
    runs = tmp_path / "runs"
    text = (runs / f"{one_record['run_id']}.json").read_text()
    (runs / "truncated.json").write_text(text[: len(text) // 2])
    (runs / "garbage.json").write_bytes(b"\x00\xff not json")
    (runs / "other.json").write_text(json.dumps({"hello": "world"}))
    (runs / "newer.json").write_text(json.dumps({**json.loads(text), "schema": 99}))
    warnings = []
    found = records.read_records([tmp_path], warn=warnings.append)
    assert [r["run_id"] for r in found] == [one_record["run_id"]]
    assert len(warnings) == 4 and all("\n" not in w for w in warnings)
    assert any("newer" in w and "upgrade dlbench" in w for w in warnings)


def test_config_hash_ignores_key_order():
    assert records.config_hash({"a": 1, "b": [1, 2]}) == records.config_hash({"b": [1, 2], "a": 1})
    assert records.config_hash({"a": 1}) != records.config_hash({"a": 2})


@pytest.mark.parametrize("text, expected", [
    ('{"seed": 123456789012345678901234567890}', {"seed": 123456789012345678901234567890}),  # exact, not a float
    ('{"a": NaN, "b": [1.5, -0.0, 9007199254740993]}', None),
    ('{"label": "\\ud83d\\ude00"}', {"label": "\U0001F600"}),
    ('{"a": 1, "a": 2}', {"a": 2}),
])
def test_read_json_reads_what_the_json_module_reads(tmp_path, text, expected):
    from suite.results import safe_io

    path = tmp_path / "r.json"
    path.write_text(text)
    got = safe_io.read_json(path)
    want = json.loads(text) if expected is None else expected
    assert json.dumps(got, allow_nan=True) == json.dumps(want, allow_nan=True)
    assert [type(v) for v in _leaves(got)] == [type(v) for v in _leaves(want)]


def _leaves(doc):
    if isinstance(doc, dict):
        return [leaf for value in doc.values() for leaf in _leaves(value)]
    if isinstance(doc, list):
        return [leaf for value in doc for leaf in _leaves(value)]
    return [doc]


def test_read_records_sees_a_file_changed_since_it_was_read(tmp_path, one_record):
    path = records.runs_dir(tmp_path) / f"{one_record['run_id']}.json"
    assert [r["run_id"] for r in records.read_records([tmp_path], warn=lambda _m: None)] == [one_record["run_id"]]
    path.write_text(path.read_text().replace('"status": "ok"', '"status": 7'))  # now invalid: never served from before
    warnings: list[str] = []
    assert records.read_records([tmp_path], warn=warnings.append) == [] and len(warnings) == 1


@pytest.mark.parametrize("field, value", [
    ("target", None), ("target", "val/accuracy"), ("target", 0.8), ("target", {"metric": 1}),
    ("target", {"metric": "val/accuracy", "value": 0.8, "higher_is_better": True}),
    ("throughput", None), ("throughput", 12.5), ("throughput", {"value": "fast"}),
    ("throughput", {"value": 12.5, "unit": "samples/s", "extra": {"tokens/s": None}}),
    ("utilisation", None), ("utilisation", 0.5), ("utilisation", 1.5), ("utilisation", -0.1), ("utilisation", "x"),
    ("utilisation", True), ("seed", 1.5), ("seed", None), ("task", ""), ("steps", None), ("steps", 2**64),
    ("final_metrics", {"test/accuracy": "high"}), ("final_metrics", {"test/accuracy": 1e301}),
    ("final_metrics", {"test/accuracy": None}), ("throughput", {"value": 1.0, "extra": {"tokens/s": "x"}}),
])
def test_the_compiled_validator_accepts_what_the_schema_accepts(field, value):
    record = {**make_record(), field: value}
    assert records._fast_accepts(record) == (records._schema_errors(record) == [])
