"""scikit-learn's digits (1,797 8x8 grey images of handwritten digits, inside its wheel): arrays, a fixed
train/validation split, and an ImageFolder writer.

The ImageFolder tree is what `exprc extract --images` and timm's data pipeline read: `ROOT/<label>/<index>.png`,
one 8x8 greyscale PNG per image, pixel = value * 255 / 16 (the data set's values are 0..16). `index` is the
image's position in `load_digits()`, so a file names its source. The tree is written into a temporary
directory beside ROOT and renamed into place: a crash leaves the old tree or none, never half of one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ExprcError

SPLITS = ("train", "val", "all")
VAL_FRACTION = 0.2
SPLIT_SEED = 0


def load_digit_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (1797, 8, 8) scaled to 0..255, labels int64 (1797,))."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ExprcError("the digits data come with scikit-learn, which is not installed: "
                         "pip install 'exprc[digits]'") from None
    d = load_digits()
    images = np.clip(np.round(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return images, d.target.astype(np.int64)


def split_indices(split: str, n: int) -> np.ndarray:
    """The indices of `split` (train, val or all) among n images: a fixed, seeded 80/20 permutation."""
    if split not in SPLITS:
        raise ExprcError(f"split must be one of {', '.join(SPLITS)}, found {split!r}")
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_val = int(round(n * VAL_FRACTION))
    chosen = {"val": perm[:n_val], "train": perm[n_val:], "all": perm}[split]
    return np.sort(chosen)


def write_image_folder(root: str | os.PathLike, split: str = "val", overwrite: bool = False) -> int:
    """Write the `split` images as `root/<label>/<index>.png`; the number of images written.

    An existing `root` is an error unless `overwrite` (then it is replaced whole, after the new tree is done)."""
    from PIL import Image

    root = Path(root)
    if root.exists() and not overwrite:
        raise ExprcError("exists; choose another directory or pass --overwrite", where=str(root))
    images, labels = load_digit_arrays()
    idx = split_indices(split, len(images))
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        for i in idx:
            folder = tmp / str(int(labels[i]))
            folder.mkdir(exist_ok=True)
            Image.fromarray(images[i]).save(folder / f"{int(i):04d}.png")
        if root.exists():
            old = root.with_name(f".{root.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(root, old)
            os.replace(tmp, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return len(idx)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
