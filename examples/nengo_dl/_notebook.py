"""What every notebook script shares: its command line and the offline digits data.

The scripts in this folder are NengoDL's documentation notebooks written as plain
scripts with ``import nhw.dl as nengo_dl``. They need data that a notebook downloads
(MNIST, Fashion-MNIST, pretrained weights); here it comes from scikit-learn's bundled
8x8 digits, and every script trains its own weights instead of downloading them.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from nhw.quiet import tf as _tf

# TensorFlow's start-up lines (absl, cuda) are not the notebooks' output: load it
# quietly here, so that the script's own ``import tensorflow as tf`` finds it loaded
_ = _tf.constant  # any attribute access loads it


def parse_args(doc: str) -> argparse.Namespace:
    """``--quick`` (the CI form: less data, fewer epochs) and ``--out`` (a folder)."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small data and few epochs (the form CI runs)")
    parser.add_argument("--out", type=Path, default=Path("runs/nengo_dl_notebooks"),
                        help="folder for the figures and parameter files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    # the notebooks silence efficiency warnings the same way
    warnings.simplefilter("ignore")
    return args


def load_digits_data(n_train: int = 1200, n_test: int = 400, upsample: int = 1,
                     pixel_max: float = 1.0, seed: int = 0):
    """scikit-learn's 8x8 digits in MNIST's layout: flat images and integer labels.

    Parameters
    ----------
    n_train, n_test
        Sizes of the two disjoint splits (at most 1797 together).
    upsample
        Each pixel becomes an ``upsample x upsample`` block, so a notebook's
        convolution stack (built for 28x28 images) still has room on the small images.
    pixel_max
        Value of a white pixel: 1 for the notebooks that normalise MNIST, 255 for
        those that feed its raw bytes (the firing rates of converted networks
        depend on that scale).
    seed
        Shuffle seed.

    Returns
    -------
    (train_images, train_labels), (test_images, test_labels)
        Images ``(n, (8 * upsample) ** 2)`` as float32 in [0, pixel_max]; labels ``(n,)`` int.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    if n_train + n_test > len(digits.target):
        raise ValueError(f"n_train + n_test must be at most {len(digits.target)}, "
                         f"got {n_train + n_test}")
    order = np.random.RandomState(seed).permutation(len(digits.target))
    images = digits.images[order].astype(np.float32) * (pixel_max / 16.0)
    if upsample > 1:
        images = np.kron(images, np.ones((1, upsample, upsample), dtype=np.float32))
    images = images.reshape((len(images), -1))
    labels = digits.target[order]
    return ((images[:n_train], labels[:n_train]),
            (images[n_train:n_train + n_test], labels[n_train:n_train + n_test]))


def savefig(fig, out: Path, name: str) -> None:
    """Write ``fig`` to ``out/name`` and close it."""
    import matplotlib.pyplot as plt

    fig.savefig(out / name, dpi=80)
    plt.close(fig)
