"""Datasets: built-in sets shipped with installed packages, and ``.npz`` files.

Nothing is downloaded at run time.  Built-in sets are scikit-learn's 8x8 digits and
synthetic signals; files are ``.npz`` archives holding ``x_train, y_train, x_test,
y_test`` (the layout of Keras' ``mnist.npz``), read without pickle.

>>> ds = load_builtin("digits", seed=0)          # doctest: +SKIP
>>> ds.x_train.shape, ds.y_train.shape           # doctest: +SKIP
((1347, 64), (1347,))
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from nhw.errors import DataError, UnknownNameError

KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays; ``x`` is ``(n, features)`` or ``(n, n_steps, features)``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_features(self) -> int:
        """Size of one input sample (the last axis of ``x``)."""
        return int(self.x_train.shape[-1])

    def summary(self) -> str:
        """One line: name and shapes."""
        return (f"{self.name}: x_train {self.x_train.shape}, y_train {self.y_train.shape}, "
                f"x_test {self.x_test.shape}, y_test {self.y_test.shape}")


def _split(name: str, x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> Dataset:
    order = np.random.RandomState(seed).permutation(len(x))
    n_test = max(1, int(round(test_fraction * len(x))))
    test, train = order[:n_test], order[n_test:]
    return Dataset(name, x[train], y[train], x[test], y[test])


def digits(seed: int = 0, test_fraction: float = 0.25, n_steps: int = 1) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (shipped with scikit-learn), in [0, 1].

    Parameters
    ----------
    seed
        Seed of the train/test shuffle.
    test_fraction
        Share of the 1797 images held out for testing.
    n_steps
        Repeat each image over this many time steps (``x`` gets a time axis if > 1).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("built-in dataset 'digits' needs scikit-learn: pip install scikit-learn") from None
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    ds = _split("digits", x, d.target.astype(np.int64), test_fraction, seed)
    return _repeat(ds, n_steps)


def _repeat(ds: Dataset, n_steps: int) -> Dataset:
    if n_steps <= 1:
        return ds
    tile = lambda x: np.repeat(x[:, None, :], n_steps, axis=1)  # noqa: E731
    return Dataset(ds.name, tile(ds.x_train), ds.y_train, tile(ds.x_test), ds.y_test)


def sine(seed: int = 0, test_fraction: float = 0.25, n_steps: int = 1000, n: int = 64,
         dt: float = 0.001) -> Dataset:
    """Sines of random frequency (0.5-3 Hz) and phase; the target is the input.

    ``x`` and ``y`` are ``(n, n_steps, 1)``.
    """
    rng = np.random.RandomState(seed)
    t = dt * np.arange(1, n_steps + 1)
    freq = rng.uniform(0.5, 3.0, size=(n, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    x = np.sin(2 * np.pi * freq * t + phase)[..., None].astype(np.float32)
    return _split("sine", x, x.copy(), test_fraction, seed)


def sin_x2(seed: int = 0, test_fraction: float = 0.25, n_steps: int = 1000, n: int = 64,
           dt: float = 0.001) -> Dataset:
    """Band-limited white signals ``x`` (rms 0.3, 5 Hz) and targets ``sin(x**2)``.

    The data of the seed tutorial's NEF chain; ``x`` and ``y`` are ``(n, n_steps, 1)``.
    """
    import nengo

    # period >= 1 s keeps the 5 Hz band non-empty for short sequences
    proc = nengo.processes.WhiteSignal(period=max(n_steps * dt, 1.0), high=5, rms=0.3)
    rng = np.random.RandomState(seed)
    x = np.stack([proc.run_steps(n_steps, d=1, dt=dt, rng=rng) for _ in range(n)]).astype(np.float32)
    return _split("sin_x2", x, np.sin(x**2), test_fraction, seed)


#: Built-in datasets by name.
BUILTIN: dict[str, Callable[..., Dataset]] = {"digits": digits, "sine": sine, "sin_x2": sin_x2}


def load_builtin(name: str, **kwargs) -> Dataset:
    """Load built-in dataset ``name`` (a key of :data:`BUILTIN`) with its keyword arguments."""
    from nhw.names import unknown

    if name not in BUILTIN:
        raise UnknownNameError(unknown("dataset", name, list(BUILTIN)))
    return BUILTIN[name](**kwargs)


def load_npz(path: str | Path, *, flatten: bool = True, scale: bool = True) -> Dataset:
    """Load ``x_train, y_train, x_test, y_test`` from an ``.npz`` file without pickle.

    Parameters
    ----------
    path
        The archive, e.g. Keras' ``mnist.npz`` (uint8 images of shape (n, 28, 28)).
    flatten
        Flatten each image to one vector (``(n, 28, 28) -> (n, 784)``).
    scale
        Map integer pixel values to [0, 1] (divide by the dtype's maximum).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: dataset file not found")
    check_npz_magic(path, "dataset file")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in KEYS if k not in f.files]
            if missing:
                raise DataError(f"{path}: missing arrays {', '.join(missing)} (has: {', '.join(f.files) or 'none'}); "
                                f"expected {', '.join(KEYS)} (Keras mnist.npz layout)")
            arrays = {k: f[k] for k in KEYS}
    except ValueError as exc:  # numpy refuses object arrays without pickle
        raise DataError(f"{path}: cannot load without pickle: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: not a readable .npz file (truncated or corrupt?): {exc}") from None
    for k in ("x_train", "x_test"):
        x = arrays[k]
        if scale and np.issubdtype(x.dtype, np.integer):
            x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
        if flatten and x.ndim > 2:
            x = x.reshape(len(x), -1)
        arrays[k] = x
    for a, b in (("x_train", "y_train"), ("x_test", "y_test")):
        if len(arrays[a]) != len(arrays[b]):
            raise DataError(f"{path}: {a} has {len(arrays[a])} samples but {b} has {len(arrays[b])}")
    for k in KEYS:
        check_finite(arrays[k], f"{path}: {k}")
    return Dataset(path.stem, **arrays)


#: The first bytes of a zip archive (every ``.npz``) and of a single ``.npy`` array.
_NPZ_MAGIC, _NPY_MAGIC = b"PK\x03\x04", b"\x93NUMPY"


def check_npz_magic(path: str | Path, what: str = ".npz file") -> None:
    """Refuse a file that is not an ``.npz`` archive, saying what it is instead.

    ``np.load`` takes any file that is not a zip or ``.npy`` for pickled data, so
    a text file or a truncated download would be reported as "pickled data".

    Raises
    ------
    DataError
        ``path`` is empty, a ``.npy`` array, text, or anything but a zip archive.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    if head.startswith(_NPZ_MAGIC):
        return
    if not head:
        kind = "an empty file"
    elif head.startswith(_NPY_MAGIC):
        kind = "a single .npy array"
    elif head.startswith(b"\x80"):
        kind = "a Python pickle (never loaded: pickles run code)"
    else:
        try:
            head.decode("utf-8")
            kind = f"a text file (starts with {head[:24].decode('utf-8', 'replace')!r})"
        except UnicodeDecodeError:
            kind = f"an unknown binary file (starts with {head[:8]!r})"
    raise DataError(f"{path}: expected an .npz archive (zip, saved with numpy.savez); got {kind}")


def check_finite(a: np.ndarray, where: str) -> None:
    """Refuse NaN or infinite values: a network fed them gives meaningless, silent results.

    Raises
    ------
    DataError
        Naming ``where``, how many values are bad and the first one's index.
    """
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.complexfloating):
        return
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{where}: {int(bad.sum())} of {a.size} values are NaN or infinite "
                        f"(first at index {first}: {a[first]!r}); expected finite numbers")
