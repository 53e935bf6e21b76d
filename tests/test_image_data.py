"""The real Fashion-MNIST and CIFAR-10 loading code, on small files in the exact on-disk formats."""
from __future__ import annotations

import gzip
import hashlib
import pickle
import struct

import numpy as np
import pytest
import torch

from suite.errors import DataError
from tasks import image_classification as ic


def write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    """IDX: magic (0, 0, dtype 0x08 = ubyte, ndim), big-endian dims, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def fake_fashion(folder, gz: bool, n_train=20, n_test=10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / name, array, gz=gz)
    return arrays


def test_fashion_mnist_from_the_data_folder(tmp_path):
    arrays = fake_fashion(tmp_path / "FashionMNIST" / "raw", gz=False)
    ic.write_fashion_manifest(tmp_path / "FashionMNIST" / "raw", "test")  # a folder dlbench made
    x, y = ic.load_fashion_mnist(tmp_path, "train")
    assert x.shape == (20, 1, 28, 28) and x.dtype == torch.float32
    assert torch.equal(y, torch.tensor(arrays["train-labels-idx1-ubyte"]))
    assert torch.allclose(x[3, 0] * 255, torch.tensor(arrays["train-images-idx3-ubyte"][3], dtype=torch.float32))
    x_test, _ = ic.load_fashion_mnist(tmp_path, "test")
    assert x_test.shape == (10, 1, 28, 28)


def test_fashion_mnist_from_debian_gz_files_is_unpacked_into_the_data_folder(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    arrays = fake_fashion(debian, gz=True)
    monkeypatch.setattr(ic, "DEBIAN_FASHION_MNIST", debian)
    data = tmp_path / "data"
    _, y = ic.load_fashion_mnist(data, "test")
    assert torch.equal(y, torch.tensor(arrays["t10k-labels-idx1-ubyte"]))
    assert sorted(p.name for p in (data / "FashionMNIST" / "raw").iterdir()) == sorted(
        [*ic.FASHION_FILES, ic.FASHION_MANIFEST])


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(ic, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(DataError) as info:
        ic.fashion_mnist_root(tmp_path / "data", download=False)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message and "\n" not in message


def test_corrupt_fashion_mnist_file_without_a_source_is_a_one_line_error(tmp_path, monkeypatch):
    raw = tmp_path / "FashionMNIST" / "raw"
    fake_fashion(raw, gz=False)
    ic.write_fashion_manifest(raw, "test")
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    monkeypatch.setattr(ic, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist") as info:
        ic.fashion_mnist_root(tmp_path, download=False)  # the checksum fails: rebuilt, and no source is left
    assert "\n" not in str(info.value)


def fake_cifar10(root) -> type:
    """CIFAR-10's python batches (pickled dicts with string keys) and a CIFAR10 subclass with their md5s."""
    from torchvision.datasets import CIFAR10

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def dump(name, obj):
        (folder / name).write_bytes(pickle.dumps(obj))
        return [name, hashlib.md5((folder / name).read_bytes()).hexdigest()]

    train = [dump(f"data_batch_{i}", {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                                      "labels": [int(v) for v in rng.integers(0, 10, 4)]}) for i in range(1, 6)]
    test = [dump("test_batch", {"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8),
                                "labels": [0, 1, 2, 3, 4, 5]})]
    name, md5 = dump("batches.meta", {"label_names": [f"class{i}" for i in range(10)]})

    class FakeCIFAR10(CIFAR10):
        train_list, test_list = train, test
        meta = {"filename": name, "key": "label_names", "md5": md5}

    return FakeCIFAR10


def test_cifar10_loading_from_python_batches(tmp_path):
    cls = fake_cifar10(tmp_path)
    x, y = ic.load_cifar10(tmp_path, "train", dataset_cls=cls)
    assert x.shape == (20, 3, 32, 32) and 0.0 <= x.min() and x.max() <= 1.0
    x_test, y_test = ic.load_cifar10(tmp_path, "test", dataset_cls=cls)
    assert x_test.shape == (6, 3, 32, 32) and y_test.tolist() == [0, 1, 2, 3, 4, 5]
    # CIFAR rows are channel-major 32x32 planes: pixel (c, i, j) is data[c * 1024 + i * 32 + j]
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes())["data"]
    assert x_test[2, 1, 5, 7].item() == pytest.approx(raw[2, 1024 + 5 * 32 + 7] / 255.0)


def test_cifar10_unreachable_is_a_one_line_error(tmp_path):
    class Offline:
        def __init__(self, *a, **k):
            raise OSError("network unreachable")

    with pytest.raises(DataError, match="run once online"):
        ic.load_cifar10(tmp_path, "train", dataset_cls=Offline)


def test_random_crop_flip_is_a_random_window_of_the_padded_image_flipped_half_the_time():
    torch.manual_seed(0)
    n, pad, side = 64, 2, 8
    x = torch.rand(n, 3, side, side)  # distinct values: each window of each image is recognisable
    out = ic.random_crop_flip(x, pad=pad)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
    offsets, flips = set(), 0
    for i in range(n):
        found = [(dy, dx, flip) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1) for flip in (False, True)
                 if torch.equal(out[i], padded[i, :, dy:dy + side, dx:dx + side].flip(2) if flip
                                else padded[i, :, dy:dy + side, dx:dx + side])]
        assert len(found) == 1, f"image {i} is not one window of its padded self (same in every channel)"
        dy, dx, flip = found[0]
        offsets.add((dy, dx))
        flips += flip
    assert len(offsets) >= 10, f"crop offsets hardly vary: {sorted(offsets)} of 25"
    assert 16 <= flips <= 48, f"{flips} of {n} images flipped: expected about half"


def test_models_fit_every_image_size():
    for dataset in ("digits", "fashion_mnist", "cifar10"):
        s = ic.IMAGE_SETS[dataset]
        for name in ("mlp", "cnn"):
            model = ic.ImageClassification.models[name](s.channels, s.size, s.classes).eval()
            assert model(torch.zeros(2, s.channels, s.size, s.size)).shape == (2, s.classes)


def test_cutout_zeroes_one_square_per_image_and_nothing_else():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 32, 32) + 1.0  # no zero pixel before cutout
    out = ic.cutout(x, 8)
    zeroed = out == 0
    assert (zeroed.sum((2, 3)) == 64).all(), "each channel of each image loses exactly one 8x8 square"
    assert (zeroed == zeroed[:, :1]).all(), "the same square in every channel"
    rows, cols = zeroed[:, 0].any(2), zeroed[:, 0].any(1)
    assert (rows.sum(1) == 8).all() and (cols.sum(1) == 8).all(), "the zeroed pixels form a square"
    assert torch.equal(out[~zeroed], x[~zeroed])


def test_full_cnn_is_pages_resnet9():
    """Page's DAWNBench ResNet-9: 6,573,120 parameters, counted layer by layer here."""
    convs = [(3, 64), (64, 128), (128, 128), (128, 128), (128, 256), (256, 512), (512, 512), (512, 512)]
    expected = sum(9 * cin * cout + 2 * cout for cin, cout in convs) + 512 * 10  # conv + BN, bias-free head
    recipe = ic.ImageClassification.profiles["full"].recipes["cnn"]
    model = ic.cnn(3, 32, 10, **recipe.model_kwargs)
    assert sum(p.numel() for p in model.parameters()) == expected == 6_573_120
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_full_profile_trains_on_cifar10_files(tmp_path, monkeypatch):
    """CIFAR-10 python batches -> the full recipe (ResNet-9, crop/flip/cutout) -> an ok record."""
    import torchvision.datasets

    from suite.running.config import SuiteOptions
    from suite.running.runner import run_one

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fake_cifar10(tmp_path))
    opts = SuiteOptions(profile="full", device="cpu", results=tmp_path / "results", data_dir=str(tmp_path),
                        max_steps=2)
    record = run_one(ic.ImageClassification, "cnn", 0, opts, log=lambda _m: None)
    assert record["status"] == "ok", record["error"]
    assert record["steps"] == 2 and record["params"] == 6_573_120
    assert record["data_info"]["train"]["samples"] == 16 and "test/accuracy" in record["final_metrics"]  # a fifth of the 20 training images is held out as val


def test_image_splits_carry_a_content_fingerprint(tmp_path):
    """Other data under one dataset name never shares a table cell: each split records a hash of its content."""
    from tasks.image_classification import ImageClassification

    task = ImageClassification(ImageClassification.spec_for("smoke", "cnn"), tmp_path)
    train, test = task.load("train"), task.load("test")
    assert len(train.info["fingerprint"]) == 64
    assert train.info["fingerprint"] != test.info["fingerprint"]
    assert task.load("train").info["fingerprint"] == train.info["fingerprint"]
