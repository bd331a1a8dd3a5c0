"""Classification: verified loading of every file in the shared data (and rejection of damaged ones), fetching
from a file:// URL, and the batch/fitness/score semantics on the synthetic blobs task against a reference."""
import gzip
import shutil

import numpy as np
import pytest

from esprune import datasets, noise, strategies, tasks
from esprune.datasets import DataError
from esprune.nets import cross_entropy
from esprune.params import Layout

FILES = [(name, f) for name in datasets.NAMES for f in datasets.manifest()[datasets.folder(name)]["files"]]


@pytest.mark.data
@pytest.mark.parametrize("name, filename", FILES)
def test_every_shared_file_reads_and_verifies(name, filename, data_dir):
    path = datasets.locate(name, filename, data_dir)
    if name == "kmnist" and filename.startswith("train-images"):
        assert path is None
        with pytest.raises(DataError, match="train-images-idx3-ubyte.gz not found"):
            datasets.load_split("kmnist", "train", data_dir)
        return
    array = datasets.read_verified(name, filename, path)
    assert array.dtype == np.uint8 and array.max() <= (9 if "labels" in filename else 255)


@pytest.mark.data
def test_kmnist_npz_equals_idx(data_dir):
    folder = data_dir / "kmnist"
    idx = datasets._read_idx(folder / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(datasets._read_npz(folder / "kmnist-test-imgs.npz"), idx)


@pytest.mark.data
def test_recompressed_file_verifies_and_damaged_ones_are_refused(data_dir, tmp_path):
    src = data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(src.read_bytes())
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw, compresslevel=1))  # other bytes
    datasets.read_verified("mnist", "t10k-labels-idx1-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz")
    truncated = tmp_path / "truncated" / "t10k-labels-idx1-ubyte.gz"
    truncated.parent.mkdir()
    truncated.write_bytes(src.read_bytes()[:2000])
    with pytest.raises(DataError, match="truncated.*t10k-labels-idx1-ubyte.gz.*esprune data fetch mnist"):
        datasets.read_verified("mnist", "t10k-labels-idx1-ubyte.gz", truncated)
    altered = tmp_path / "altered.gz"
    altered.write_bytes(gzip.compress(raw[:100] + bytes([(raw[100] + 1) % 10]) + raw[101:]))
    with pytest.raises(DataError, match="checksum mismatch"):
        datasets.read_verified("mnist", "t10k-labels-idx1-ubyte.gz", altered)


@pytest.mark.data
def test_fetch_from_a_file_url_keeps_only_verified_files(data_dir, tmp_path):
    kept = datasets.fetch("mnist", tmp_path, base_url=(data_dir / "mnist").as_uri())
    assert len(kept) == 4 and datasets.check(tmp_path)["mnist/t10k-images-idx3-ubyte.gz"]["status"] == "ok"
    bad_src = tmp_path / "bad"
    bad_src.mkdir()
    for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copy(data_dir / "fashion-mnist" / f, bad_src / f)  # the wrong dataset's content
    with pytest.raises(DataError, match="checksum mismatch"):
        datasets.fetch("mnist", tmp_path / "dest", base_url=bad_src.as_uri())
    assert not list((tmp_path / "dest" / "mnist").iterdir())


@pytest.mark.data
def test_fashion_mnist_end_to_end(data_dir):
    task = tasks.make("fashion_mnist", data_dir=str(data_dir), batch_size=64, test_chunk=2500)
    net = task.default_net()
    layout = Layout(net.spec)
    pop = layout.flatten(net.init(0))[None] + 0.01 * np.random.default_rng(0).standard_normal((2, layout.dim),
                                                                                            np.float32)
    fit = task.evaluate(net, layout, pop, seed=0, generation=0)
    assert fit.shape == (2,) and np.all(fit < 0) and np.all(fit > -5)
    acc = task.score(net, layout, pop)
    assert acc.shape == (2,) and np.all((acc >= 0) & (acc <= 1))


def test_missing_data_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ESPRUNE_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz not found.*esprune data fetch kmnist"):
        datasets.load_split("kmnist", "test")


def test_blobs_fitness_is_minus_cross_entropy_on_a_shared_batch_without_replacement(rng):
    task = tasks.make("blobs", n_train=500, n_test=120, size=12, batch_size=64, test_chunk=50)
    net = task.default_net()
    layout = Layout(net.spec)
    pop = layout.flatten(net.init(0))[None] + 0.2 * rng.standard_normal((3, layout.dim)).astype(np.float32)
    idx = task.batch(7, 2)
    assert len(np.unique(idx)) == 64 and not np.array_equal(idx, task.batch(7, 3))
    xtr, ytr, xte, yte = task.prepare()
    want = -cross_entropy(net.forward(layout, pop, xtr[idx], backend="numpy"), ytr[idx])
    np.testing.assert_allclose(task.evaluate(net, layout, pop, seed=7, generation=2), want, rtol=1e-4)
    out = net.forward(layout, pop, xte, backend="numpy")
    np.testing.assert_array_equal(task.score(net, layout, pop), (out.argmax(2) == yte).mean(1))
    assert abs(xtr.mean()) < 1.0 and xtr.shape[1:] == (1, 12, 12)


def test_snes_learns_blobs():
    task = tasks.make("blobs", n_train=1000, n_test=200, size=12, batch_size=128)
    net = task.default_net()
    layout = Layout(net.spec)
    es = strategies.make("snes", layout.dim, 16, seed=0, sigma_init=0.05)
    es.mean = layout.flatten(net.init(0))
    before = task.score(net, layout, es.mean[None].astype(np.float32))[0]
    for g in range(40):
        es.tell(task.evaluate(net, layout, es.ask(), seed=0, generation=g))
    after = task.score(net, layout, es.mean[None].astype(np.float32))[0]
    assert after > max(0.5, before + 0.2), (before, after)


@pytest.mark.parametrize("ties", [False, True])
def test_batch_choice_is_the_prefix_of_a_stable_argsort(ties):
    from esprune.tasks.classify import smallest_first

    for g in range(20):
        words = noise.philox_uint32(3, g, 1, 5000, stream=noise.BATCH)[0]
        words = words % np.uint32(40) if ties else words  # many equal words: the index must break ties
        for k in (1, 64, 1024, 4999, 5000, 6000):
            np.testing.assert_array_equal(smallest_first(words, k), np.argsort(words, kind="stable")[:k])
