"""Sentiment data: the VADER ground-truth archive, SST-2 / IMDB from the hub, a smoke corpus.

Every loader returns HF `datasets.Dataset` splits with two columns, `text`
(str) and `label` (0 negative, 1 positive); tokenisation happens later
(`tasks/text/models.py`) with batched `.map`.

VADER (Hutto & Gilbert, ICWSM 2014, MIT licence) ships inside the PyPI
*source* distribution of vaderSentiment 3.3.2. On first use the sdist is
fetched with pip (no install), checked against a pinned sha256, and only the
four `*_GroundTruth.txt` files are extracted into `DATA/vader/` with a
manifest (source, checksums); later runs verify the manifest and reuse them.
"""
from __future__ import annotations

import hashlib
import io
import json
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

from suite import DataError, progress, sha256_of

VADER_VERSION = "3.3.2"
VADER_SDIST = f"vaderSentiment-{VADER_VERSION}.tar.gz"
# sha256 of the PyPI file, computed 2026-11-24 from `pip download` of vaderSentiment==3.3.2.
VADER_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
VADER_INNER = f"vaderSentiment-{VADER_VERSION}/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_SETS = {  # our name -> ground-truth file inside hutto_ICWSM_2014/
    "movie": "movieReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
# Ratings are means of ~20 raters on -4..+4; |mean| < 0.5 is dropped as near-neutral
# (DATA.md: TF-IDF+LR 0.770 keeping all, 0.798 at 0.5, 0.818 at 1.0). 0.5 keeps 95% of
# the movie snippets while removing the ones raters themselves did not agree were polar.
NEUTRAL_BAND = 0.5
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
OOD_CAP = 500  # sentences per out-of-domain set, so an eval stays cheap on a CPU
MANIFEST = "manifest.json"


def vader_fetch_command(folder: Path) -> str:
    return f"{sys.executable} -m pip download --no-deps --no-binary :all: vaderSentiment=={VADER_VERSION} -d {folder}"


# -- the VADER archive ----------------------------------------------------------
def pip_download(folder: Path) -> None:
    """Fetch the vaderSentiment sdist into `folder` with pip (a registry call, not an install)."""
    cmd = vader_fetch_command(folder).split()
    with progress(desc=f"fetching {VADER_SDIST} with pip", total=1, unit="file") as bar:
        done = subprocess.run(cmd, capture_output=True, text=True)
        bar.update(done.returncode == 0)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise DataError(f"could not download {VADER_SDIST} ({last}): run `{vader_fetch_command(folder)}` "
                        "where a package index is reachable, then run again")


def extract_ground_truth(sdist: Path, folder: Path, sha256: str | None = None) -> None:
    """Check `sdist` against `sha256` (default: the pinned one), extract the four ground-truth files
    and a manifest into `folder`."""
    sha256 = sha256 or VADER_SHA256
    got = sha256_of(sdist)
    if got != sha256:
        raise DataError(f"{sdist} has sha256 {got[:12]}..., expected {sha256[:12]}... (corrupt or another "
                        f"version): delete it and run `{vader_fetch_command(sdist.parent)}`")
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    try:
        with tarfile.open(sdist, "r:gz") as outer:
            inner_bytes = outer.extractfile(VADER_INNER).read()
        with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
            for name in VADER_SETS.values():
                data = inner.extractfile(f"hutto_ICWSM_2014/{name}").read()
                tmp = folder / f".{name}.tmp"
                tmp.write_bytes(data)
                tmp.replace(folder / name)
                files[name] = hashlib.sha256(data).hexdigest()
    except (tarfile.TarError, KeyError, AttributeError, OSError, EOFError) as exc:
        raise DataError(f"{sdist} does not hold the VADER ground truth ({type(exc).__name__}: {exc}): "
                        f"delete it and run `{vader_fetch_command(sdist.parent)}`") from None
    manifest = {"source": f"PyPI sdist vaderSentiment=={VADER_VERSION}, {VADER_INNER}",
                "sdist_sha256": sha256, "files": files, "made_by": "dlbench tasks/text/data.py"}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))


def manifest_ok(folder: Path) -> bool:
    """True when the manifest exists and every listed file has its recorded checksum."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return set(files) == set(VADER_SETS.values()) and all(
        (folder / name).is_file() and sha256_of(folder / name) == digest for name, digest in files.items())


def ensure_vader(data_dir: Path, fetch: Callable[[Path], None] = pip_download) -> Path:
    """The folder of verified VADER ground-truth files: reuse, else extract a local sdist, else fetch it."""
    folder = data_dir / "vader"
    if manifest_ok(folder):
        return folder
    sdist = folder / VADER_SDIST  # where the fetch command in our error messages puts it
    if sdist.is_file():
        extract_ground_truth(sdist, folder)
        return folder
    with tempfile.TemporaryDirectory(prefix="dlbench-vader-") as tmp:
        fetch(Path(tmp))
        got = Path(tmp) / VADER_SDIST
        if not got.is_file():
            raise DataError(f"{VADER_SDIST} was not fetched: run `{vader_fetch_command(folder)}` and run again")
        extract_ground_truth(got, folder)
    return folder


def parse_ground_truth(path: Path) -> list[tuple[str, float, str]]:
    """Rows (id, mean valence, text) of a tab-separated VADER ground-truth file."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            rows.append((parts[0], float(parts[1]), parts[2].strip()))
        except (IndexError, ValueError):
            raise DataError(f"{path}:{number} is not 'id<TAB>valence<TAB>text': delete {path.parent} "
                            "and run again to re-extract it") from None
    return rows


# -- labels and splits ------------------------------------------------------------
def polar_rows(rows: list[tuple[str, float, str]], band: float = NEUTRAL_BAND) -> tuple[list[str], list[int]]:
    """Texts and binary labels (valence > 0), dropping |valence| < band and repeated texts."""
    seen, texts, labels = set(), [], []
    for _id, valence, text in rows:
        key = " ".join(text.lower().split())
        if abs(valence) < band or key in seen:
            continue
        seen.add(key)
        texts.append(text)
        labels.append(int(valence > 0))
    return texts, labels


def stratified_split(labels: list[int], fractions: dict[str, float], seed: int) -> dict[str, list[int]]:
    """Indices per split: each class shuffled with `seed` and cut in the given fractions."""
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    out: dict[str, list[int]] = {name: [] for name in fractions}
    rng = random.Random(seed)
    for label in sorted(by_class):
        idx = by_class[label]
        rng.shuffle(idx)
        start = 0
        for k, (name, frac) in enumerate(fractions.items()):
            end = len(idx) if k == len(fractions) - 1 else start + round(frac * len(idx))
            out[name] += idx[start:end]
            start = end
    return {name: sorted(idx) for name, idx in out.items()}


def capped(texts: list[str], labels: list[int], cap: int, seed: int) -> tuple[list[str], list[int]]:
    """At most `cap` items, a seeded stratified sample (all of them when fewer)."""
    if len(texts) <= cap:
        return texts, labels
    keep = stratified_split(labels, {"keep": cap / len(texts), "rest": 1.0}, seed)["keep"]
    return [texts[i] for i in keep], [labels[i] for i in keep]


def check_train_labels(labels, where: str) -> None:
    """An empty or one-class training split cannot train a classifier: say so in one line."""
    classes = sorted(set(int(x) for x in labels))
    if len(classes) < 2:
        raise DataError(f"{where}: the training split has {len(labels)} sentences and classes {classes}; "
                        "it needs both negative (0) and positive (1) examples")


def content_sha256(dataset) -> str:
    """sha256 of a split's sentences and labels, in order: the content fingerprint records key cells on."""
    digest = hashlib.sha256()
    for text, label in zip(dataset["text"], dataset["label"]):
        digest.update(f"{int(label)}\t{text}\n".encode())
    return digest.hexdigest()


def as_dataset(texts: list[str], labels: list[int]):
    import datasets

    return datasets.Dataset.from_dict({"text": list(texts), "label": list(labels)})


def vader_splits(data_dir: Path, seed: int = 0) -> dict:
    """train / val / test from the movie snippets, ood_tweets / ood_amazon / ood_nyt from the rest."""
    folder = ensure_vader(data_dir)
    texts, labels = polar_rows(parse_ground_truth(folder / VADER_SETS["movie"]))
    parts = stratified_split(labels, SPLIT_FRACTIONS, seed)
    out = {name: as_dataset([texts[i] for i in idx], [labels[i] for i in idx]) for name, idx in parts.items()}
    for name in ("tweets", "amazon", "nyt"):
        ood = polar_rows(parse_ground_truth(folder / VADER_SETS[name]))
        out[f"ood_{name}"] = as_dataset(*capped(*ood, OOD_CAP, seed))
    return out


# -- SST-2 and IMDB through `datasets` ----------------------------------------------
HUB = {"sst2": ("nyu-mll/glue", "sst2"), "imdb": ("stanfordnlp/imdb", None)}
IMDB_EVAL_CAP = 5000


def hub_dataset(name: str, data_dir: Path):
    """A DatasetDict: local parquet files in DATA/<name>/ (SST-2 columns), else the hub (cached)."""
    import datasets

    local = data_dir / name
    files = {p.stem: str(p) for p in sorted(local.glob("*.parquet"))}
    try:
        if files:
            return datasets.load_dataset("parquet", data_files=files)
        path, config = HUB[name]
        return datasets.load_dataset(path, config)
    except Exception as exc:  # noqa: BLE001 - offline or corrupt: one line saying how to fix it
        where = f"parquet files in {local}" if files else f"the hub dataset {HUB[name][0]}"
        raise DataError(f"could not load {where} ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}): "
                        f"run once online (datasets caches it), or put train.parquet/validation.parquet "
                        f"with columns sentence,label,idx in {local}") from None


SST2_VAL = 872  # as many as GLUE's validation set


def sst2_splits(data_dir: Path, seed: int = 0) -> dict:
    """SST-2: val = 872 whole sentences carved from GLUE train (stratified, seed 0), train = the rest of it
    less every phrase of those sentences, test = GLUE validation (the split papers report; GLUE's test labels
    are hidden), so runs stop on data other than the figure they report.

    GLUE's train holds each training sentence together with the labelled phrases of its parse tree; a val
    carved from it item by item would be phrases whose sentence, or the sentence whose phrases, the model
    trains on (`phrase_trees`). Whole sentences, as GLUE's validation holds, with their trees kept out of
    train, make a val like the test split."""
    sst = hub_dataset("sst2", data_dir)
    keep = ["text", "label"]
    train = sst["train"].rename_column("sentence", "text").select_columns(keep)
    texts, labels = list(train["text"]), list(train["label"])
    roots, in_tree = phrase_trees(texts)
    val = min(SST2_VAL, len(roots) // 5)  # a fifth at most, for small local copies
    chosen = stratified_split([labels[i] for i in roots], {"val": val / max(1, len(roots)), "rest": 1.0}, 0)["val"]
    val_roots = [roots[i] for i in chosen]
    held_out = set().union(*(in_tree(i) for i in val_roots)) if val_roots else set()
    rest = [i for i in range(len(texts)) if i not in held_out]
    return {"train": train.select(rest), "val": train.select(sorted(val_roots)),
            "test": sst["validation"].rename_column("sentence", "text").select_columns(keep)}


def phrase_trees(texts: list[str]) -> tuple[list[int], Callable[[int], set[int]]]:
    """The roots of `texts` (items no other item contains as a run of whole words: SST's sentences), longest
    first, and a function giving the indices of the items a root contains (itself included: its phrases).

    Items are taken longest first, and each one no root taken before contains becomes a root; only a
    root's word runs are looked up, so the cost is that of the sentences' runs, not of every phrase's."""
    words = [text.split() for text in texts]
    index: dict[str, list[int]] = {}  # a text -> every item of it (a repeated text is in the tree too)
    for i, w in enumerate(words):
        index.setdefault(" ".join(w), []).append(i)

    def in_tree(root: int) -> set[int]:
        w = words[root]
        runs = (" ".join(w[a:b]) for a in range(len(w)) for b in range(a + 1, len(w) + 1))
        return {i for run in runs for i in index.get(run, ())} | {root}

    contained: set[int] = set()
    roots = []
    for i in sorted(range(len(texts)), key=lambda i: -len(words[i])):
        if i in contained:
            continue
        roots.append(i)
        contained |= in_tree(i)
    return roots, in_tree


def imdb_eval(data_dir: Path, seed: int = 0):
    """IMDB test reviews (a seeded stratified sample), an out-of-domain set for an SST-2 model."""
    test = hub_dataset("imdb", data_dir)["test"]
    if len(test) > IMDB_EVAL_CAP:
        keep = stratified_split(list(test["label"]), {"keep": IMDB_EVAL_CAP / len(test), "rest": 1.0}, seed)["keep"]
        test = test.select(keep)
    return test.select_columns(["text", "label"])


# -- smoke: a few dozen sentences made in code ----------------------------------------
_POS = ["wonderful", "moving", "brilliant", "funny", "charming", "gripping", "delightful", "superb"]
_NEG = ["dull", "tedious", "awful", "boring", "clumsy", "lifeless", "dreadful", "pointless"]
_FRAMES = ["the film is {}", "a {} story with {} acting", "what a {} and {} movie",
           "the plot felt {} from start to end", "{} direction , {} script"]


def smoke_splits(seed: int = 0) -> dict:
    """Template sentences (polar adjectives in neutral frames), 48 train / 16 val / 16 test."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(80):
        label = i % 2
        words = _POS if label else _NEG
        frame = _FRAMES[i % len(_FRAMES)]
        texts.append(frame.format(*(rng.choice(words) for _ in range(frame.count("{}")))) + f" #{i}")
        labels.append(label)
    parts = stratified_split(labels, {"train": 0.6, "val": 0.2, "test": 0.2}, seed)
    return {name: as_dataset([texts[i] for i in idx], [labels[i] for i in idx]) for name, idx in parts.items()}
