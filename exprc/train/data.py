"""Training and validation data: an ImageFolder tree through timm's pipeline, or random images (`--synthetic N`).

Every sample is addressed as (epoch, index): the sampler yields these keys and the dataset transforms image
`index` with Python's, NumPy's and torch's generators seeded from (seed, epoch, index) and restored afterwards.
So an augmented sample depends on nothing but its key: not on the number of processes or loader workers, nor on
whether the run was resumed part-way through an epoch; and the global generator that dropout and drop-path draw
from is left alone. Training order is `DistributedSampler`'s (a permutation seeded by seed + epoch, rank r taking
every world-th index, the tail dropped), which a resumed run enters at its saved position.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from ..errors import ExprcError
from .config import RealignConfig
from .distributed import World


@contextmanager
def seeded_rngs(*key: int):
    """Python's, NumPy's and torch's (CPU) global generators seeded from `key` inside the block, as before after."""
    seed = int(np.random.SeedSequence([abs(int(k)) for k in key]).generate_state(1, np.uint64)[0] >> 1)
    saved = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(seed)  # torch.manual_seed would also queue a CUDA seeding per sample
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.random.set_rng_state(saved[2])


class RandomImages(Dataset):
    """`count` images of normal pixels (already in the model's normalized input space) with a faint pattern per
    class, so that a model can learn something; label = index mod classes."""

    def __init__(self, count: int, shape: tuple[int, ...], classes: int, seed: int, offset: int = 0):
        self.count, self.shape, self.classes, self.seed, self.offset = count, tuple(shape), classes, seed, offset
        gen = torch.Generator().manual_seed(seed + 7919)
        self.patterns = torch.randn((classes, *self.shape), generator=gen)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.offset + index)
        label = index % self.classes
        return torch.randn(self.shape, generator=gen) + 0.5 * self.patterns[label], label


class KeyedImages(Dataset):
    """Items addressed (epoch, index): `base[index]`, its image through `transform` with seeded generators."""

    def __init__(self, base: Dataset, transform, seed: int):
        self.base, self.transform, self.seed = base, transform, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        image, target = self.base[index]
        if self.transform is not None:
            with seeded_rngs(self.seed, epoch, index):
                image = self.transform(image)
        return image, target


class TrainSampler(DistributedSampler):
    """`DistributedSampler` (shuffled, tail dropped) yielding (epoch, index) keys, from a position in the epoch."""

    def __init__(self, dataset: Dataset, world: World, seed: int):
        super().__init__(dataset, num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        """Yield epoch `epoch`'s keys from this rank's `start`-th on."""
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for k, index in enumerate(super().__iter__()):
            if k >= self.start:
                yield self.epoch, index

    def __len__(self) -> int:
        return max(self.num_samples - self.start, 0)


class EvalSampler(Sampler):
    """Rank r's share of the validation set, every world-th index, each image exactly once over all ranks."""

    def __init__(self, size: int, world: World):
        self.indices = list(range(world.rank, size, world.size))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((0, i) for i in self.indices)

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class Data:
    train: DataLoader
    val: DataLoader
    sampler: TrainSampler
    train_size: int
    val_size: int
    classes: int


def transforms(config: RealignConfig, data_config: dict):
    """(training, evaluation) transforms of timm's pipeline: DeiT's augmentation (RandAugment, color jitter,
    random erasing; no mixup, cutmix or label smoothing) and a center crop of `crop_pct`."""
    from timm.data import create_transform

    common = {"input_size": data_config["input_size"], "interpolation": data_config["interpolation"],
              "mean": data_config["mean"], "std": data_config["std"]}
    evaluation = create_transform(**common, is_training=False, crop_pct=config.crop_pct)
    if not config.augment:
        return evaluation, evaluation
    training = create_transform(**common, is_training=True, auto_augment=config.auto_augment or None,
                                color_jitter=config.color_jitter, re_prob=config.reprob, re_mode="pixel", re_count=1)
    return pillow_safe_posterize(training), evaluation


def pillow_safe_posterize(transform):
    """`transform` with the posterize operations of timm's RandAugment keeping 0 bits as a black image.

    At magnitude 10 (rand-m9-mstd0.5 draws it for about 2% of its operations) timm asks Pillow to posterize to 0
    bits; Pillow < 13 returned a black image, Pillow 13 raises ValueError, which would end a run within the first
    few thousand images. Only the operations of this transform change, not timm."""
    for t in getattr(transform, "transforms", ()):
        for op in getattr(t, "ops", ()):
            if getattr(op, "name", "").startswith("Posterize"):
                op.aug_fn = _posterize
    return transform


def _posterize(img, bits_to_keep: int, **_):
    from PIL import ImageOps

    if bits_to_keep >= 8:
        return img
    if bits_to_keep <= 0:
        return img.point(lambda _: 0)
    return ImageOps.posterize(img, bits_to_keep)


def _folder(root: Path, split: str, class_map: dict | None = None):
    from timm.data import ImageDataset

    where = root / split
    if not where.is_dir():
        raise ExprcError(f"--data needs {split}/ inside (an ImageFolder tree: {split}/CLASS/IMAGE), not found",
                         where=str(root))
    try:
        data = ImageDataset(str(where), class_map=class_map)
    except Exception as e:  # timm's folder reader raises plain exceptions for empty or odd trees
        raise ExprcError(f"cannot read the image folder: {e}", where=str(where)) from None
    if len(data) == 0:
        raise ExprcError("no images found", where=str(where))
    return data


def _image_folders(config: RealignConfig, classes: int):
    """train/ and val/ under --data; val/'s classes are numbered as train/'s."""
    root = Path(config.data)
    train = _folder(root, "train")
    names = train.reader.class_to_idx
    stray = sorted(p.name for p in (root / "val").iterdir() if p.is_dir() and p.name not in names) \
        if (root / "val").is_dir() else []
    if stray:
        raise ExprcError(f"val/ has classes that train/ does not: {', '.join(stray[:5])}", where=str(root))
    val = _folder(root, "val", class_map=dict(names))
    if len(names) > classes:
        raise ExprcError(f"the data has {len(names)} classes, the model's head {classes} outputs "
                         f"(set --model-arg num_classes={len(names)} for a new head)", where=str(root))
    return train, val, len(names)


def build_data(config: RealignConfig, model: torch.nn.Module, world: World, micro_batch: int) -> Data:
    """Loaders of this process's share of the training and validation images, `micro_batch` images a batch."""
    from ..gp.extract import data_config

    dc = data_config(model)
    classes = model.num_classes
    if config.synthetic is not None:
        train_base = RandomImages(config.synthetic, dc["input_size"], classes, config.seed)
        val_base = RandomImages(max(config.synthetic // 10, 1), dc["input_size"], classes, config.seed,
                                offset=config.synthetic)
        train_tf = val_tf = None
        used_classes = classes
    else:
        train_base, val_base, used_classes = _image_folders(config, classes)
        train_tf, val_tf = transforms(config, dc)
    train_set = KeyedImages(train_base, train_tf, config.seed)
    val_set = KeyedImages(val_base, val_tf, config.seed)
    sampler = TrainSampler(train_set, world, config.seed)
    if sampler.num_samples < micro_batch:
        raise ExprcError(f"{len(train_set)} training images are too few for a batch of {micro_batch} per process")
    loader = {"num_workers": config.workers, "pin_memory": world.device.type == "cuda",
              "persistent_workers": config.workers > 0}
    # own generators: creating a loader's iterator must not draw from the global one (dropout's)
    train = DataLoader(train_set, batch_size=micro_batch, sampler=sampler, drop_last=True,
                       generator=torch.Generator(), **loader)
    val = DataLoader(val_set, batch_size=micro_batch, sampler=EvalSampler(len(val_set), world),
                     generator=torch.Generator(), **loader)
    return Data(train, val, sampler, len(train_set), len(val_set), used_classes)
