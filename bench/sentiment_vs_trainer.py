"""Fine-tuning speed: dlbench's harness against transformers' `Trainer`, same model, data, steps.

Both fine-tune the packaged MiniLM (sentiment task, model `minilm_finetune`) on
the same training split with the same recipe (AdamW, lr, weight decay, linear
schedule with 10% warm-up, grad-norm clip, batch size, max length), one after
the other in this process, and print training samples/s and their ratio.

  dlbench  the record's throughput: samples / train time, the harness's two
           warm-up steps excluded (they run on a restored snapshot), eval timed apart.
  Trainer  its own `train_samples_per_second` (whole `train()` call), and a
           steady-state figure over the steps after the first two (a callback),
           the like-for-like number. Length-grouped sampling is on, as dlbench
           buckets by length too.

With --baseline it also fits TF-IDF (1-2 grams) + logistic regression on the
same split and prints its accuracy on every eval split: the hand-crafted
baseline a deep model has to beat.

    python bench/sentiment_vs_trainer.py --profile quick --steps 60 [--device cpu] [--baseline]

The ratio follows the host's load: measure on an idle machine. Measured figures: docs/results-cpu.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from suite.running.config import SuiteOptions  # noqa: E402
from suite.taskapi.data import data_dir  # noqa: E402
from suite.running.device import resolve_device  # noqa: E402
from suite.running.runner import run_one  # noqa: E402
from suite.errors import script_exit_code  # noqa: E402
from tasks.text.models import pretrained_name, quiet_datasets  # noqa: E402
from tasks.sentiment import Sentiment  # noqa: E402

MODEL = "minilm_finetune"


def tfidf_baseline(task: Sentiment) -> dict[str, float]:
    """Accuracy of TF-IDF 1-2 grams + logistic regression, trained on the task's train split."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    splits = task.text_splits()
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    x = vec.fit_transform(splits["train"]["text"])
    clf = LogisticRegression(max_iter=2000, C=4.0).fit(x, splits["train"]["label"])
    return {name: float(clf.score(vec.transform(ds["text"]), ds["label"]))
            for name, ds in splits.items() if name != "train"}


def run_dlbench(profile: str, steps: int, device: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        opts = SuiteOptions(profile=profile, device=device, results=Path(tmp), max_steps=steps, precision="auto")
        record = run_one(Sentiment, MODEL, 0, opts, log=lambda _m: None)
    if record["status"] != "ok":
        raise SystemExit(f"dlbench run failed: {record['error']}")
    return record


class SteadyClock:
    """A Trainer callback timing the steps after the first `skip` (warm-up), device synchronised."""

    def __init__(self, skip: int, device: torch.device):
        from transformers import TrainerCallback

        clock = self

        class _Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                if state.global_step == skip:
                    clock.sync()
                    clock.start = time.perf_counter()
                if state.global_step == state.max_steps:
                    clock.sync()
                    clock.end = time.perf_counter()

        self.callback, self.device, self.start, self.end = _Callback(), device, None, None

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def run_trainer(profile: str, steps: int, device: torch.device) -> dict[str, float]:
    from transformers import (AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    task = Sentiment(Sentiment.spec_for(profile, MODEL), data_dir())
    recipe, tok, max_len = task.spec.recipe, task.tokenizer, task.max_len
    with quiet_datasets():
        train = task.text_splits()["train"].map(
            lambda b: tok(b["text"], truncation=True, max_length=max_len), batched=True, remove_columns=["text"])
        train = train.map(lambda b: {"length": [len(x) for x in b["input_ids"]]}, batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(pretrained_name(), num_labels=2)
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, max_steps=steps, per_device_train_batch_size=recipe.batch_size,
            learning_rate=recipe.lr, weight_decay=recipe.weight_decay, lr_scheduler_type="linear",
            warmup_steps=int(recipe.warmup_frac * steps), max_grad_norm=recipe.grad_clip or 0.0,
            train_sampling_strategy="group_by_length", length_column_name="length",
            use_cpu=device.type == "cpu", bf16=bf16, seed=0, report_to="none", save_strategy="no",
            eval_strategy="no", logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
        clock = SteadyClock(skip=2, device=device)
        trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=DataCollatorWithPadding(tok),
                          callbacks=[clock.callback])
        out = trainer.train()
    steady = (steps - 2) * recipe.batch_size / (clock.end - clock.start)
    return {"trainer_samples_per_s": float(out.metrics["train_samples_per_second"]), "steady_samples_per_s": steady}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--profile", default="quick", choices=("smoke", "quick", "full"))
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps for each of the two runs")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--baseline", action="store_true", help="also print TF-IDF + logistic regression accuracy")
    args = parser.parse_args(argv)
    if args.steps < 4:
        parser.error("--steps must be >= 4 (two warm-up steps are excluded from the steady-state figure)")
    device = resolve_device(args.device)
    torch.manual_seed(0)
    hf_logging.set_verbosity_error()  # the "classifier weights newly initialised" report is expected
    if args.baseline:
        task = Sentiment(Sentiment.spec_for(args.profile, MODEL), data_dir())
        for split, acc in tfidf_baseline(task).items():
            print(f"tfidf+logreg  {split:<11} accuracy {acc:.4f}")
    record = run_dlbench(args.profile, args.steps, args.device)
    ours = record["throughput"]["value"]
    print(f"dlbench       {ours:9.1f} samples/s  ({args.steps} steps, train {record['train_time_s']:.1f}s, "
          f"{record['config']['precision']})")
    theirs = run_trainer(args.profile, args.steps, device)
    print(f"Trainer       {theirs['trainer_samples_per_s']:9.1f} samples/s  (its own figure, whole train())")
    print(f"Trainer       {theirs['steady_samples_per_s']:9.1f} samples/s  (steady state, steps 3..{args.steps})")
    print(f"ratio dlbench / Trainer steady state: {ours / theirs['steady_samples_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(script_exit_code(main, "sentiment_vs_trainer"))
