"""Image classification tasks that score a whole population: the MNIST family and the synthetic ``blobs``.

Normalization and batching follow PAPER.md: pixels / 255, then (x − 0.1307) / 0.3081 for every dataset; each
generation draws one training batch (default 1024, without replacement, from esprune's seeded noise) shared by
all members; fitness = −mean cross-entropy; the test score is the accuracy on the whole test set, computed in
chunks on the chosen backend. Data are loaded (and verified) on first use, or by ``prepare()``.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import backend as _backend
from .. import datasets, noise
from ..errors import ConfigError, bounded
from ..nets import CNN, correct, cross_entropy, mnist_cnn

MEAN, STD = 0.1307, 0.3081
# Upper bounds of the size options (errors.bounded), far above any real use: images in a batch, a test chunk or
# a blobs split (MNIST has 60000 training images); pixels a blobs data set may hold in all (2**27: 2.4 times
# MNIST's 70000 images of 28×28; making them takes 24 bytes a pixel at the peak: 3 GiB)
MAX_IMAGES = 1_000_000
MAX_BLOB_PIXELS = 2**27
SEED_LIMIT = 2**32


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) → float32 (N, 1, H, W), scaled to [0, 1] then standardized with the MNIST constants."""
    return ((images.astype(np.float32) / 255.0 - MEAN) / STD)[:, None]


class ClassifyTask:
    kind = "classify"

    def __init__(self, name: str, loader, batch_size: int = 1024, test_chunk: int = 1000, in_shape=(1, 28, 28)):
        self.name, self._loader = name, loader
        self.batch_size = bounded("batch_size", batch_size, MAX_IMAGES)
        self.test_chunk = bounded("test_chunk", test_chunk, MAX_IMAGES)
        self.obs_shape, self.act_dim = tuple(in_shape), 10
        self._data = None
        self._device = None  # (backend name, images, labels) when the training set lives on a GPU

    def __repr__(self):
        return f"ClassifyTask({self.name!r}, batch_size={self.batch_size})"

    def describe(self) -> dict:
        return {"kind": self.kind, "obs_shape": list(self.obs_shape), "act_dim": self.act_dim,
                "actions": "10 classes (log-softmax)", "horizon": None, "batch_size": self.batch_size,
                "default_net": repr(self.default_net())}

    def default_net(self) -> CNN:
        return mnist_cnn() if self.obs_shape == (1, 28, 28) else CNN(self.obs_shape)

    def prepare(self):
        """Load and verify the data now (a missing or corrupt file is a clear error before any work)."""
        if self._data is None:
            (xtr, ytr), (xte, yte) = self._loader()
            self._data = (normalize(xtr), ytr.astype(np.int64), normalize(xte), yte.astype(np.int64))
            if len(self._data[0]) < self.batch_size:
                raise ConfigError(f"{self.name}: batch_size {self.batch_size} exceeds the {len(self._data[0])} "
                                  "training images")
        return self._data

    def batch(self, seed: int, generation: int, size: int | None = None) -> np.ndarray:
        """Indices of this generation's training batch: the first ``size`` (default ``batch_size``, at most the
        training set) of a seeded permutation."""
        n = len(self.prepare()[0])
        words = noise.philox_uint32(seed, generation, 1, n, stream=noise.BATCH)[0]
        return smallest_first(words, min(self.batch_size if size is None else int(size), n))

    def evaluate(self, net, layout, pop, seed: int, generation: int = 0, backend="numba") -> np.ndarray:
        """−mean cross-entropy per member ``(P,)`` on this generation's shared batch."""
        be = _backend.get(backend)
        xtr, ytr = self._train_on(be)
        idx = be.asarray(self.batch(seed, generation))  # only the indices travel; the images stay put
        out = net.forward(layout, pop, xtr[idx], backend=be)
        return be.to_numpy(-cross_entropy(out, ytr[idx]))

    def _train_on(self, be):
        """The training set on ``be``'s device, copied there once (the GPU keeps it for the whole run)."""
        xtr, ytr, _, _ = self.prepare()
        if be.xp is np:
            return xtr, ytr
        if self._device is None or self._device[0] != be.name:
            self._device = (be.name, be.asarray(xtr), be.asarray(ytr))
        return self._device[1], self._device[2]

    def score(self, net, layout, pop, seed: int = 0, backend="numba") -> np.ndarray:
        """Test accuracy per member ``(P,)`` over the whole test set, in chunks of ``test_chunk``."""
        be = _backend.get(backend)
        _, _, xte, yte = self.prepare()
        hits = 0
        for start in range(0, len(xte), self.test_chunk):
            sl = slice(start, start + self.test_chunk)
            hits = hits + be.to_numpy(correct(net.forward(layout, pop, be.asarray(xte[sl]), backend=be),
                                              be.asarray(yte[sl])))
        return hits / len(xte)


def _mnist_family(name, data_dir=None):
    return datasets.load_split(name, "train", data_dir), datasets.load_split(name, "test", data_dir)


def make_blobs(n_train: int = 6000, n_test: int = 1000, size: int = 28, seed: int = 0):
    """Ten classes of Gaussian bumps: class c is a bump centred on the c-th of ten points on a circle, with a
    jittered centre and width, on a noisy background; uint8 images like MNIST's. Deterministic in ``seed``."""
    rng = np.random.default_rng([seed, 0xB10B5])
    n = n_train + n_test
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    angle = 2 * np.pi * labels / 10
    cy = size / 2 + size * 0.28 * np.sin(angle) + rng.normal(0, size * 0.04, n)
    cx = size / 2 + size * 0.28 * np.cos(angle) + rng.normal(0, size * 0.04, n)
    width = size * rng.uniform(0.08, 0.14, n)
    yy, xx = np.mgrid[:size, :size]
    bump = np.exp(-((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2) / (2 * width[:, None, None] ** 2))
    images = np.clip(255 * (bump + rng.normal(0, 0.1, bump.shape)), 0, 255).astype(np.uint8)
    return (images[:n_train], labels[:n_train].astype(np.uint8)), (images[n_train:], labels[n_train:].astype(np.uint8))


def mnist_like(name):
    def factory(data_dir=None, batch_size: int = 1024, test_chunk: int = 1000):
        return ClassifyTask(name, functools.partial(_mnist_family, name, data_dir), batch_size, test_chunk)
    return factory


def blobs(n_train: int = 6000, n_test: int = 1000, size: int = 28, seed: int = 0, batch_size: int = 1024,
          test_chunk: int = 1000):
    n_train, n_test = bounded("n_train", n_train, MAX_IMAGES), bounded("n_test", n_test, MAX_IMAGES)
    size, seed = bounded("size", size, 1024, low=4), bounded("seed", seed, SEED_LIMIT - 1, low=0)
    if (n_train + n_test) * size * size > MAX_BLOB_PIXELS:
        raise ConfigError(f"blobs of {n_train} + {n_test} images of {size}×{size} hold "
                          f"{(n_train + n_test) * size * size} pixels, more than the {MAX_BLOB_PIXELS} allowed; "
                          "use fewer or smaller images")
    return ClassifyTask("blobs", functools.partial(make_blobs, n_train, n_test, size, seed), batch_size,
                        test_chunk, in_shape=(1, size, size))


TASKS = {"mnist": mnist_like("mnist"), "fashion_mnist": mnist_like("fashion_mnist"), "kmnist": mnist_like("kmnist"),
         "blobs": blobs}


def smallest_first(words: np.ndarray, k: int) -> np.ndarray:
    """``np.argsort(words, kind="stable")[:k]`` without sorting all of ``words``: a partition on the unique keys
    (word, index), then a sort of the k chosen. 0.5 ms instead of 4 ms for MNIST's 60000 (a GPU generation is
    only a few times that, and this runs on the host every generation)."""
    if k >= len(words):
        return np.argsort(words, kind="stable")[:k]
    keys = (words.astype(np.uint64) << np.uint64(32)) | np.arange(len(words), dtype=np.uint64)
    chosen = np.argpartition(keys, k - 1)[:k]
    return chosen[np.argsort(keys[chosen])]
