"""Loaders (on files written in the true formats), source lookup, prepare_data atomicity."""

import gzip
import json

import numpy as np
import pytest

from npdraw.artifacts.io import file_digest
from npdraw.data import formats
from npdraw.data.prepare import load_prepared, prepare
from npdraw.data.sources import SOURCES, DataError, DataFile, locate
from tests import formats_fixtures as fx
from tests.conftest import MIRROR, needs_mirror

# --- formats ---------------------------------------------------------------------------


def test_mnist_idx_roundtrip(tmp_path):
    data = fx.write_mnist(tmp_path)
    paths = {name: tmp_path / name for name in data}
    arrays = formats.load_mnist(paths)
    assert arrays["train_images"].shape == (30, 1, 28, 28)
    np.testing.assert_array_equal(arrays["train_images"][:, 0], data["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(arrays["test_labels"], data["t10k-labels-idx1-ubyte.gz"])


def test_idx_truncated_and_corrupt(tmp_path):
    fx.write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))  # valid gzip, short payload
    with pytest.raises(DataError, match="header promises"):
        formats.read_idx(path)
    path.write_bytes(path.read_bytes()[:50])  # cut inside the gzip stream
    with pytest.raises(DataError, match="not a readable gzip file"):
        formats.read_idx(path)
    path.write_bytes(gzip.compress(b"\x00\x00\x09\x99" + raw[4:]))
    with pytest.raises(DataError, match="magic number"):
        formats.read_idx(path)


def test_binarized_mnist_amat_and_mat_agree(tmp_path):
    rng = np.random.default_rng(0)
    parts = {s: rng.integers(0, 2, (n, 784), dtype=np.uint8) for s, n in (("train", 5), ("valid", 3), ("test", 2))}
    paths = {}
    for s, x in parts.items():
        fx.write_amat(tmp_path / f"binarized_mnist_{s}.amat", x)
        fx.write_binarized_mat(tmp_path / f"binarized_mnist_{s}.mat", x)
        paths[f"binarized_mnist_{s}.amat"] = tmp_path / f"binarized_mnist_{s}.amat"
        paths[f"binarized_mnist_{s}.mat"] = tmp_path / f"binarized_mnist_{s}.mat"
    a, m = formats.load_binarized_mnist(paths, "amat"), formats.load_binarized_mnist(paths, "mat")
    np.testing.assert_array_equal(a["train_images"], m["train_images"])
    assert a["train_images"].shape == (8, 1, 28, 28)  # train then the official validation set
    np.testing.assert_array_equal(a["train_images"][5:].reshape(3, -1) // 255, parts["valid"])
    (tmp_path / "binarized_mnist_test.amat").write_text("0 1 0\n")
    with pytest.raises(DataError, match="784-value rows"):
        formats.read_amat(tmp_path / "binarized_mnist_test.amat")


def test_cifar10_tar(tmp_path):
    batches = fx.write_cifar10(tmp_path / "cifar-10-python.tar.gz")
    arrays = formats.load_cifar10(tmp_path / "cifar-10-python.tar.gz")
    assert arrays["train_images"].shape == (20, 3, 32, 32) and arrays["test_images"].shape == (4, 3, 32, 32)
    first = batches["data_batch_1"][b"data"][0]
    np.testing.assert_array_equal(arrays["train_images"][0, 0].ravel(), first[:1024])  # red plane first
    np.testing.assert_array_equal(arrays["test_labels"], batches["test_batch"][b"labels"])
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes((tmp_path / "cifar-10-python.tar.gz").read_bytes()[:300])
    with pytest.raises(DataError, match="cut.tar.gz"):
        formats.load_cifar10(truncated)


@pytest.mark.parametrize("as_zip", [True, False])
def test_celeba_crop_resize_and_partitions(tmp_path, as_zip):
    fx.write_celeba(tmp_path, partitions=(0, 0, 1, 2, 0), as_zip=as_zip)
    paths = {"list_eval_partition.txt": tmp_path / "list_eval_partition.txt",
             "img_align_celeba.zip": tmp_path / "img_align_celeba.zip",
             "img_align_celeba": tmp_path / "img_align_celeba"}
    arrays = formats.load_celeba(paths, "zip" if as_zip else "dir", 64)
    assert arrays["train_images"].shape == (3, 3, 64, 64)   # partition 0
    assert arrays["test_images"].shape == (1, 3, 64, 64)    # the 'valid' partition 1
    expected = formats.celeba_image(fx.celeba_jpeg(2), 64)  # third file is the validation image
    np.testing.assert_array_equal(arrays["test_images"][0], expected)


def test_celeba_bad_partition_line(tmp_path):
    fx.write_celeba(tmp_path)
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 7\n")
    paths = {"list_eval_partition.txt": tmp_path / "list_eval_partition.txt",
             "img_align_celeba.zip": tmp_path / "img_align_celeba.zip"}
    with pytest.raises(DataError, match=r"list_eval_partition.txt:1"):
        formats.load_celeba(paths, "zip", 64)


def test_omniglot_zip(tmp_path):
    n_chars = fx.write_omniglot_zip(tmp_path)
    paths = {n: tmp_path / n for n in ("images_background.zip", "images_evaluation.zip")}
    arrays, names = formats.load_omniglot_zip(paths, 28)
    assert names == ["Alpha", "Beta", "Gamma"]
    assert arrays["train_images"].shape == (n_chars * 15, 1, 28, 28)
    assert arrays["test_images"].shape == (n_chars * 5, 1, 28, 28)
    assert arrays["train_alphabets"].tolist() == [0] * 30 + [1] * 15 + [2] * 15
    assert arrays["train_characters"].tolist()[:16] == [0] * 15 + [1]
    ink = arrays["train_images"].astype(float) / 255
    assert 0.01 < ink.mean() < 0.3  # strokes are ink = 1 on a 0 background


def test_omniglot_chardata(tmp_path):
    images = fx.write_chardata(tmp_path / "chardata.mat")
    arrays, names = formats.load_omniglot_chardata(tmp_path / "chardata.mat")
    assert arrays["train_images"].shape == (6, 1, 28, 28) and arrays["test_images"].shape == (3, 1, 28, 28)
    np.testing.assert_allclose(arrays["train_images"][:, 0] / 255, images[""], atol=1 / 255)
    assert arrays["train_alphabets"].tolist() == [0, 1, 2, 0, 1, 2]


# --- sources -----------------------------------------------------------------------------


def test_missing_files_are_named_with_where_looked(empty_mirror):
    with pytest.raises(DataError) as err:
        locate(SOURCES["celeba"], "celeba")
    message = str(err.value)
    assert "list_eval_partition.txt" in message and str(empty_mirror / "celeba") in message
    assert "NPDRAW_DATA" in message


def test_checksum_mismatch_names_expected_and_actual(empty_mirror):
    (empty_mirror / "cifar10").mkdir()
    (empty_mirror / "cifar10" / "cifar-10-python.tar.gz").write_bytes(b"not the real file")
    with pytest.raises(DataError) as err:
        locate(SOURCES["cifar10_python"], "cifar10")
    message = str(err.value)
    assert "c58f30108f718f92721af3b95e74349a" in message and "checksum mismatch" in message
    assert file_digest(empty_mirror / "cifar10" / "cifar-10-python.tar.gz", "md5") in message


def test_download_verifies_and_leaves_nothing_half_written(empty_mirror, tmp_path):
    remote = tmp_path / "remote.bin"
    remote.write_bytes(b"payload" * 1000)
    good = DataFile("demo", "file.bin", md5=file_digest(remote, "md5"), url=remote.as_uri())
    fmt, paths, sums = locate({"bin": [good]}, "demo")
    assert paths["file.bin"].read_bytes() == remote.read_bytes() and sums["file.bin"]["md5"] == good.md5
    bad = DataFile("demo2", "file.bin", md5="0" * 32, url=remote.as_uri())
    with pytest.raises(DataError, match="checksum mismatch"):
        locate({"bin": [bad]}, "demo2")
    assert not any((tmp_path / "cache" / "demo2").iterdir())  # no partial or unverified file
    offline = DataFile("demo3", "file.bin", md5=good.md5, url=(tmp_path / "absent.bin").as_uri())
    with pytest.raises(DataError, match="download"):
        locate({"bin": [offline]}, "demo3")


@pytest.mark.slow
def test_prepare_from_fixture_mirror_and_atomicity(empty_mirror, tmp_path, params, monkeypatch):
    fx.write_mnist(empty_mirror / "mnist")
    # The fixture files have their own checksums: register those for this test.
    names = [f.name for f in SOURCES["mnist_idx"]["idx"]]
    monkeypatch.setitem(SOURCES, "mnist_idx", {"idx": [
        DataFile("mnist", n, md5=file_digest(empty_mirror / "mnist" / n, "md5")) for n in names]})
    ds, out = params["datasets"]["mnist"], tmp_path / "prepared"
    manifest = prepare("mnist", ds, out)
    assert manifest["counts"] == {"train": 30, "test": 10}
    assert load_prepared(out)["train_images"].shape == (30, 1, 28, 28)
    # A failing rerun (wrong image size) keeps the finished output and leaves no temporary.
    with pytest.raises(DataError, match="expected uint8"):
        prepare("mnist", dict(ds, image_size=32), out)
    assert json.loads((out / "manifest.json").read_text())["counts"]["train"] == 30
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # A failing first run leaves no folder at all.
    with pytest.raises(DataError):
        prepare("mnist", dict(ds, channels=3), tmp_path / "never")
    assert not (tmp_path / "never").exists()


# --- the real mirror -------------------------------------------------------------------------


@needs_mirror("mnist")
@pytest.mark.slow
def test_prepare_mnist_from_mirror(tmp_path, params, monkeypatch):
    monkeypatch.setenv("NPDRAW_DATA", str(MIRROR))
    manifest = prepare("mnist", params["datasets"]["mnist"], tmp_path / "mnist", allow_download=False)
    assert manifest["counts"] == {"train": 60000, "test": 10000, "static_test": 10000}
    arrays = load_prepared(tmp_path / "mnist")
    assert np.bincount(arrays["train_labels"]).tolist()[:2] == [5923, 6742]
    assert manifest["provenance"]["files"]["train-images-idx3-ubyte.gz"]["md5"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"


@pytest.mark.slow
@needs_mirror("omniglot")
def test_prepare_omniglot_from_mirror(tmp_path, params, monkeypatch):
    monkeypatch.setenv("NPDRAW_DATA", str(MIRROR))
    manifest = prepare("omniglot", params["datasets"]["omniglot"], tmp_path / "omni", allow_download=False)
    assert manifest["counts"] == {"train": 24345, "test": 8115}
    arrays = load_prepared(tmp_path / "omni")
    assert len(np.unique(arrays["train_characters"])) == 1623
    assert len(np.unique(arrays["train_alphabets"])) == 50
    assert manifest["provenance"]["alphabet_names"][:2] == ["Arcadian", "Armenian"]
    ink = arrays["test_images"].astype(np.float32) / 255
    assert 0.05 < ink.mean() < 0.25  # ink = 1 on a zero background after inversion
