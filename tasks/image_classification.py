"""Image classification: how fast a machine trains a classifier to a fixed validation accuracy.

Datasets
  smoke  scikit-learn's bundled 8x8 digits (1,797 images): every code path in seconds.
  quick  Fashion-MNIST (Xiao et al. 2017), 50k train / 10k val (carved) / 10k test, 28x28 grey, photos
         of clothing. Offline from Debian's `dataset-fashion-mnist`, else torchvision's
         download (cached in the data folder).
  full   CIFAR-10 through torchvision (download when online, cached), with random crop,
         flip and cutout augmentation done on device tensors.

Models
  mlp       two hidden layers with batch norm (`depth`, `width`, `activation`: `--set model.depth=4`).
  cnn       (default) a small VGG-style convnet with batch norm, in the airbench spirit;
            at full, its residual form: Page's ResNet-9 (DAWNBench 2018, 94% in 24 epochs).
  resnet18  torchvision's ResNet-18 with a 3x3 stem and no max-pool for small images
            (stride-2 stem at quick, to fit a CPU).
  logreg_pixels  hand-crafted: multinomial logistic regression on the raw pixels (scikit-learn).
  hog_linear     hand-crafted: HOG features (scikit-image; 4x4-pixel cells, 2x2-cell blocks, 9 bins) +
                 logistic regression. Both fitted by suite/training/estimator.py, on the CPU.

Targets
  Runs stop on the validation split; the test split (and held-out sets) only report.
  quick  val/accuracy >= 0.90 on 10,000 images carved from the training set (seed 0): set from the reference convergence of cnn
         (tasks/references/image_classification.quick.cnn.json, docs/methodology.md).
  full   val/accuracy >= 0.94 (airbench / DAWNBench CIFAR-10 reference, on 5,000 training images held out).
  speed  no target: throughput on synthetic data at the full profile's shapes.
How the recipes came to be: docs/recipe-history.md.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from dataclasses import dataclass
from typing import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from suite import (
    Budget, ConfigError, DataError, FittedClassifier, Model, ProfileSpec, Recipe, Target, Task, TensorSource,
    atomic_write_text, full_dataset, load_references, register_task, sha256_of, speed_profile,
)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class ImageSet:
    channels: int
    size: int
    classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool  # random crop (pad 4 / 2) + horizontal flip while training
    load: Callable[[Path, str], tuple[torch.Tensor, torch.Tensor]]  # (data folder, "train"|"test") -> (images, labels)
    val_size: int  # images carved out of the published training set as the validation split
    cutout: int = 0  # side of a square zeroed at a random place in each training image (0: none)


VAL_SPLIT_SEED = 0  # the validation carve is one fixed draw, the same for every run and seed


def carve(split: str, x: torch.Tensor, y: torch.Tensor, val_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The `train` or `val` part of a published training set: `val_size` images drawn once (seed 0)
    are held out from training, so runs stop on data they never trained on and the test set only reports."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(VAL_SPLIT_SEED))
    size = min(val_size, len(y) // 5)  # a fifth at most, for small local copies
    keep = order[:size] if split == "val" else order[size:].sort().values
    return x[keep], y[keep]


# -- models -------------------------------------------------------------------
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


def activation_layer(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError("model.activation", name, f"use one of {', '.join(ACTIVATIONS)}")
    return nn.ReLU(inplace=True) if name == "relu" else ACTIVATIONS[name]()


def mlp(channels: int, size: int, classes: int, depth: int = 2, width: int = 1024, activation: str = "relu",
        dropout: float = 0.2) -> nn.Module:
    """`depth` hidden layers of `width` units (linear, batch norm, activation, dropout), then a linear head."""
    if depth < 0 or width < 1:
        raise ConfigError("model.depth/width", (depth, width), "depth must be >= 0 and width >= 1")
    layers, cin = [nn.Flatten()], channels * size * size
    for _ in range(depth):
        layers += [nn.Linear(cin, width), nn.BatchNorm1d(width), activation_layer(activation), nn.Dropout(dropout)]
        cin = width
    return nn.Sequential(*layers, nn.Linear(cin, classes))


def _conv_block(cin: int, cout: int, pool: bool, activation: str = "relu") -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), activation_layer(activation)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """x + two conv-BN-ReLU layers of the same width (ResNet-9's residual pair)."""

    def __init__(self, width: int, activation: str = "relu"):
        super().__init__()
        self.body = nn.Sequential(_conv_block(width, width, False, activation),
                                  _conv_block(width, width, False, activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def cnn(channels: int, size: int, classes: int, width: int = 32, residual: bool = False, depth: int = 3,
        activation: str = "relu") -> nn.Module:
    """`depth` conv-pool stages of width w, 2w, 4w, ... (pooling only while the map is >= 4 pixels), global
    max-pool, linear.

    `residual=True` makes it the ResNet-9 with which Page (2018, "How to train your ResNet") won
    DAWNBench, 94% CIFAR-10 test accuracy in 24 epochs: a prep conv of width w, stages of 2w, 4w, 8w,
    a residual pair after the first and the last stage, and logits scaled by 1/8.
    """
    if depth < 1 or width < 1:
        raise ConfigError("model.depth/width", (depth, width), "depth and width must be >= 1")
    stages = [width * 2 ** (k + residual) for k in range(depth)]
    layers, cin, side = [], channels, size
    if residual:
        layers.append(_conv_block(channels, width, pool=False, activation=activation))
        cin = width
    for k, cout in enumerate(stages):
        pool = side >= 4
        layers.append(_conv_block(cin, cout, pool, activation))
        if residual and k in (0, depth - 1):
            layers.append(Residual(cout, activation))
        side = side // 2 if pool else side
        cin = cout
    layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(cin, classes, bias=not residual)]
    if residual:
        layers.append(Scale(0.125))
    return nn.Sequential(*layers)


def resnet18(channels: int, size: int, classes: int, stem_stride: int = 1) -> nn.Module:
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(num_classes=classes)
    # Small images: a 3x3 stem and no max-pool (the usual CIFAR adaptation). A stride-2
    # stem quarters the compute, for CPU-sized runs on 28x28 inputs.
    model.conv1 = nn.Conv2d(channels, 64, 3, stride=stem_stride, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


# -- hand-crafted baselines (fitted by suite.training.estimator) --------------------------
def logreg_pixels(channels: int, size: int, classes: int, c: float = 1.0, max_iter: int = 200) -> FittedClassifier:
    """Multinomial logistic regression on the raw (normalised) pixels: no features at all."""
    from sklearn.linear_model import LogisticRegression

    return FittedClassifier(lambda x: x.flatten(1).float().cpu().numpy(), LogisticRegression(C=c, max_iter=max_iter))


def hog_features(x: torch.Tensor, cell: int) -> np.ndarray:
    """HOG (Dalal & Triggs 2005; scikit-image) of each image of (batch, channels, h, w): 9 orientations,
    `cell` x `cell` pixel cells, 2 x 2 cell blocks, L2-Hys."""
    from skimage.feature import hog

    images = x.float().cpu().permute(0, 2, 3, 1).numpy()
    return np.stack([hog(im, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2),
                         channel_axis=-1) for im in images])


def hog_linear(channels: int, size: int, classes: int, cell: int = 4, c: float = 1.0,
               max_iter: int = 300) -> FittedClassifier:
    """HOG features + a linear classifier (logistic regression on standardised features)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cell = min(cell, size // 2)  # at least 2 x 2 cells, one block
    return FittedClassifier(lambda x: hog_features(x, cell),
                            make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter)))


# -- data ---------------------------------------------------------------------
def load_digits_split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn digits, a fixed 80/20 split (every 5th image is test)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    test = torch.arange(len(y)) % 5 == 0
    keep = test if split == "test" else ~test
    return x[keep], y[keep]


# sha256 of the four un-gzipped IDX files of Fashion-MNIST (Debian's package and the upstream download agree).
FASHION_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_MANIFEST = "manifest.json"
_FASHION_CHECKED: set[tuple] = set()  # (folder, file sizes and times) verified by this process


def write_fashion_manifest(raw: Path, source: str) -> dict:
    """Record the sha256 of the four IDX files in RAW/manifest.json (what later runs check against)."""
    manifest = {"dataset": "Fashion-MNIST", "source": source,
                "files": {name: sha256_of(raw / name) for name in FASHION_FILES},
                "made_by": "tasks/image_classification.py"}
    atomic_write_text(raw / FASHION_MANIFEST, json.dumps(manifest, indent=1))
    return manifest


def _fashion_stamp(raw: Path) -> tuple | None:
    try:
        return (str(raw),) + tuple((n, (raw / n).stat().st_size, (raw / n).stat().st_mtime_ns)
                                   for n in (*FASHION_FILES, FASHION_MANIFEST))
    except OSError:
        return None


def fashion_mnist_valid(raw: Path) -> bool:
    """True when RAW holds the four files matching its manifest (or, with no manifest, the known checksums)."""
    stamp = _fashion_stamp(raw) if (raw / FASHION_MANIFEST).is_file() else None
    if stamp is not None and stamp in _FASHION_CHECKED:
        return True
    if not all((raw / name).is_file() for name in FASHION_FILES):
        return False
    try:
        files = json.loads((raw / FASHION_MANIFEST).read_text())["files"]
        expected = {name: files[name] for name in FASHION_FILES}  # every file listed: none goes unchecked
    except FileNotFoundError:
        expected, adopt = FASHION_SHA256, True
    except (OSError, ValueError, KeyError, TypeError):
        return False
    else:
        adopt = False
    if any(sha256_of(raw / name) != digest for name, digest in expected.items()):
        return False
    if adopt:  # the real files put there by hand or by an older dlbench: write their manifest
        write_fashion_manifest(raw, "found in the data folder (known checksums)")
    stamp = _fashion_stamp(raw)
    if stamp is not None:
        _FASHION_CHECKED.add(stamp)
    return True


def fashion_mnist_root(data_dir: Path, download: bool = True) -> Path:
    """A folder torchvision's FashionMNIST reads offline, checked against its manifest; rebuilt when corrupt.

    Order: the data dir (if its files match their checksums), else Debian's files, else a download.
    """
    raw = data_dir / "FashionMNIST" / "raw"
    if fashion_mnist_valid(raw):
        return data_dir
    if raw.exists():  # corrupt, truncated or half-made: start again from a source
        shutil.rmtree(raw, ignore_errors=True)
    if all((DEBIAN_FASHION_MNIST / f"{name}.gz").is_file() for name in FASHION_FILES):
        # torchvision wants the IDX files un-gzipped (Debian's .gz md5s differ from its own).
        raw.mkdir(parents=True, exist_ok=True)
        try:
            for name in FASHION_FILES:
                tmp = raw / f".{name}.tmp"
                with gzip.open(DEBIAN_FASHION_MNIST / f"{name}.gz") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                tmp.replace(raw / name)
        except (OSError, EOFError) as exc:
            raise DataError(f"Fashion-MNIST in {DEBIAN_FASHION_MNIST} is unreadable ({exc}): "
                            "reinstall it with `sudo apt-get install --reinstall dataset-fashion-mnist`") from None
        write_fashion_manifest(raw, str(DEBIAN_FASHION_MNIST))
        return data_dir
    if download:
        from torchvision.datasets import FashionMNIST

        try:
            FashionMNIST(str(data_dir), train=True, download=True)  # checks the md5 of each download
            FashionMNIST(str(data_dir), train=False, download=True)
            write_fashion_manifest(raw, "torchvision download")
            return data_dir
        except Exception:  # noqa: BLE001 - offline: fall through to the one-line error
            pass
    raise DataError(
        f"Fashion-MNIST not found in {raw} or {DEBIAN_FASHION_MNIST} and could not be downloaded: "
        "install it with `sudo apt-get install dataset-fashion-mnist`, or run once online"
    )


def tensors_sha256(*tensors: torch.Tensor) -> str:
    """sha256 over the tensors' bytes (a split's content fingerprint; ~0.3 s for Fashion-MNIST's train split)."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()


def load_fashion_mnist(data_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import FashionMNIST

    root = fashion_mnist_root(data_dir)
    try:
        ds = FashionMNIST(str(root), train=(split == "train"), download=False)
    except (RuntimeError, ValueError, OSError) as exc:
        raise DataError(f"Fashion-MNIST files in {root / 'FashionMNIST' / 'raw'} are unreadable ({exc}): "
                        "delete that folder and run again") from None
    return ds.data.unsqueeze(1).float() / 255.0, ds.targets.long()


def load_cifar10(data_dir: Path, split: str, dataset_cls=None) -> tuple[torch.Tensor, torch.Tensor]:
    if dataset_cls is None:
        from torchvision.datasets import CIFAR10 as dataset_cls
    try:
        ds = dataset_cls(str(data_dir), train=(split == "train"), download=True)
    except Exception as exc:  # noqa: BLE001 - offline or corrupt: one line saying how to fix it
        raise DataError(f"CIFAR-10 is not in {data_dir / 'cifar-10-batches-py'} and could not be downloaded "
                        f"({type(exc).__name__}): run once online, or copy the python batches there") from None
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).float() / 255.0
    return x, torch.tensor(ds.targets, dtype=torch.long)


# A dataset is one declaration here: its shape, normalisation, augmentation and loader.
IMAGE_SETS = {
    "digits": ImageSet(1, 8, 10, (0.2745,), (0.3765,), augment=False,
                       load=lambda _data_dir, split: load_digits_split(split), val_size=287),
    "fashion_mnist": ImageSet(1, 28, 10, (0.2860,), (0.3530,), augment=False, load=load_fashion_mnist,
                              val_size=10_000),
    "cifar10": ImageSet(3, 32, 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), augment=True,
                        load=load_cifar10, cutout=8, val_size=5_000),
}


def random_crop_flip(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Batched random crop (reflect-padded by `pad`) and horizontal flip, on x's device."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dx = torch.randint(0, 2 * pad + 1, (n,), device=x.device)
    dy = torch.randint(0, 2 * pad + 1, (n,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])  # n x h
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])  # n x w
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]
    flip = torch.rand(n, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def cutout(x: torch.Tensor, side: int) -> torch.Tensor:
    """Zero a `side` x `side` square at a random place (fully inside) in each image, on x's device."""
    n, _, h, w = x.shape
    top = torch.randint(0, h - side + 1, (n, 1, 1), device=x.device)
    left = torch.randint(0, w - side + 1, (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
    return x.masked_fill(inside.unsqueeze(1), 0.0)


# -- the task -----------------------------------------------------------------
REFERENCES = Path(__file__).parent / "references"
QUICK_TARGET = Target("val/accuracy", 0.90, True,
                      "reference convergence of cnn over 10+ seeds (tasks/references/, docs/methodology.md)")


@register_task
class ImageClassification(Task):
    name = "image_classification"
    version = 2  # 2: a validation split carved from the training set decides; test only reports
    models = {"mlp": mlp, "cnn": cnn, "resnet18": resnet18,
              "logreg_pixels": Model(logreg_pixels, family="hand-crafted", estimator=True),
              "hog_linear": Model(hog_linear, family="hand-crafted", estimator=True)}
    default_model = "cnn"
    metrics = {"accuracy": True, "loss": False}
    profiles = {
        "smoke": ProfileSpec(
            expected_s=5, download_mb=0,
            dataset="digits",
            target=Target("val/accuracy", 0.80, True,
                          "smoke check only: a few steps exercise every code path; reaching it is not expected"),
            budget=Budget(max_steps=12, max_time_s=60, eval_every=384),
            recipes={
                "mlp": Recipe(batch_size=64, lr=3e-3, model_kwargs={"width": 64}),
                "cnn": Recipe(batch_size=64, lr=3e-3, model_kwargs={"width": 8}),
                "resnet18": Recipe(batch_size=32, lr=1e-3, budget=Budget(max_steps=2, max_time_s=60)),
            },
        ),
        "quick": ProfileSpec(
            expected_s=11, download_mb=0,
            dataset="fashion_mnist",
            target=QUICK_TARGET,
            budget=Budget(max_epochs=3, max_time_s=300, eval_every=5_000),
            recipes={
                "mlp": Recipe(batch_size=256, lr=2e-3, weight_decay=0.05, budget=Budget(max_epochs=10, max_time_s=300)),
                "cnn": Recipe(batch_size=256, lr=4e-3, weight_decay=0.05, model_kwargs={"width": 24},
                              cpu_channels_last=True, cpu_bf16=True),
                # Stride-2 stem (14x14 after it): a ResNet-18 time-to-target a CPU can measure.
                "resnet18": Recipe(batch_size=256, lr=2e-3, weight_decay=0.05, model_kwargs={"stem_stride": 2},
                                   budget=Budget(max_epochs=2, max_time_s=900)),
            },
            references=load_references(REFERENCES, "image_classification", "quick"),
        ),
        "full": ProfileSpec(
            expected_s=None, download_mb=163,
            dataset="cifar10",
            target=Target("val/accuracy", 0.94, True, "airbench (Jordan 2024) / DAWNBench CIFAR-10 reference: 94%"),
            budget=Budget(max_epochs=40, max_time_s=3600, eval_every=45_000),
            recipes={
                "mlp": Recipe(batch_size=512, lr=1e-3, weight_decay=0.05, model_kwargs={"width": 2048}),
                # Page's DAWNBench ResNet-9 recipe: 24 epochs, batch 512, Nesterov SGD, learning rate linearly
                # up to 0.4 at epoch 5 then down to 0, weight decay 5e-4, crop + flip + 8x8 cutout.
                "cnn": Recipe(batch_size=512, optimizer="sgd", lr=0.4, weight_decay=5e-4, warmup_frac=5 / 24,
                              model_kwargs={"width": 64, "residual": True},
                              budget=Budget(max_epochs=24, max_time_s=3600)),
                "resnet18": Recipe(batch_size=512, optimizer="sgd", lr=0.2, weight_decay=5e-4, warmup_frac=0.15),
            },
        ),
    }
    profiles["speed"] = speed_profile(profiles["full"])

    @property
    def image_set(self) -> ImageSet:
        return IMAGE_SETS[full_dataset(self.spec.dataset)]

    def synthetic_batch(self, batch_size: int, device: torch.device, generator: torch.Generator) -> dict:
        s = self.image_set  # normalised pixels: about zero mean, unit variance
        return {"x": torch.randn(batch_size, s.channels, s.size, s.size, device=device, generator=generator),
                "y": torch.randint(0, s.classes, (batch_size,), device=device, generator=generator)}

    def load(self, split: str) -> TensorSource:
        s = self.image_set
        if split == "test":
            x, y = s.load(self.data_dir, "test")
        else:
            x, y = carve(split, *s.load(self.data_dir, "train"), s.val_size)
        mean = torch.tensor(self.image_set.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.image_set.std).view(1, -1, 1, 1)
        # What the split holds, whatever folder or route it came from: other data never shares a table cell.
        info = {"fingerprint": tensors_sha256(x, y)}
        return TensorSource(info, x=(x - mean) / std, y=y)

    def build_model(self) -> nn.Module:
        s = self.image_set
        return self.models[self.spec.model](s.channels, s.size, s.classes, **self.spec.recipe.model_kwargs)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch["x"]
        if self.image_set.augment:
            x = random_crop_flip(x, pad=4 if self.image_set.size >= 32 else 2)
        if self.image_set.cutout:
            x = cutout(x, self.image_set.cutout)
        return F.cross_entropy(model(x), batch["y"], label_smoothing=0.1)

    def evaluate(self, model: nn.Module, source: TensorSource) -> dict[str, float]:
        correct = torch.zeros((), device=next(model.parameters()).device)
        loss_sum = torch.zeros((), device=correct.device)
        for batch in source.batches(self.spec.recipe.eval_batch_size):
            logits = model(batch["x"]).float()
            correct += (logits.argmax(1) == batch["y"]).sum()
            loss_sum += F.cross_entropy(logits, batch["y"], reduction="sum")
        n = len(source)
        return {"accuracy": correct.item() / n, "loss": loss_sum.item() / n}
