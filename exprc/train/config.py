"""What a re-alignment run is: `RealignConfig`, and the paper's defaults per variant and norm kind (Table 3).

The paper (Section 2.3, Appendices B-C) fine-tunes a pre-trained ViT-B whose LayerNorms were replaced, in three
variants: A (affine only: the backbone frozen, only the norms' weight and bias train, and DyT's alpha), F (full
fine-tuning) and D (full, plus logit distillation from the original LayerNorm model). Every field of
`RealignConfig` left at None takes its value from `TABLE3` for the run's (norm, variant); any can be set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import ExprcError

NORMS = ("gp", "dyt", "ln")
VARIANTS = ("A", "F", "D")
AMP_MODES = ("auto", "bf16", "fp16", "none")


@dataclass(frozen=True)
class Defaults:
    """One column of Table 3: learning rates (None: that group does not train), weight decay, stochastic depth."""

    lr_backbone: float | None
    lr_affine: float
    lr_alpha: float | None
    weight_decay: float
    drop_path: float


# Table 3 of the paper, one column a line. LN is fine-tuned only fully there (its column, "LN"); LN-A and LN-D are
# not in the paper: LN-D takes LN's column, LN-A GP-A's affine rate (LN's 1e-6 would leave it where it started).
TABLE3: dict[tuple[str, str], Defaults] = {
    #  norm   variant       lr_backbone lr_affine lr_alpha  wd   drop_path
    ("ln", "F"): Defaults(1e-6, 1e-6, None, 0.0, 0.1),
    ("gp", "A"): Defaults(None, 2e-3, None, 0.0, 0.0),
    ("dyt", "A"): Defaults(None, 8e-3, 8e-3, 0.0, 0.0),
    ("gp", "F"): Defaults(1e-5, 1e-5, None, 0.0, 0.1),
    ("dyt", "F"): Defaults(2e-5, 1e-4, 5e-5, 0.0, 0.0),
    ("gp", "D"): Defaults(1e-5, 1e-5, None, 0.0, 0.1),
    ("dyt", "D"): Defaults(3e-5, 1e-4, 5e-5, 0.0, 0.0),
    ("ln", "D"): Defaults(1e-6, 1e-6, None, 0.0, 0.1),  # not in the paper
    ("ln", "A"): Defaults(None, 2e-3, None, 0.0, 0.0),  # not in the paper
}

# Appendix B, the same for every variant
PAPER_EPOCHS = 20
PAPER_BATCH = 512
PAPER_BETAS = (0.9, 0.999)
DEIT_AUTO_AUGMENT = "rand-m9-mstd0.5-inc1"
DEIT_COLOR_JITTER = 0.4
DEIT_REPROB = 0.25
EVAL_CROP_PCT = 0.875
DISTILL_LAMBDA = 0.5
DISTILL_TAU = 4.0
DYT_ALPHA_INIT = 0.5  # Zhu et al.; the paper keeps it

# what identifies a run: a checkpoint resumes only a run that agrees on all of these
IDENTITY_FIELDS = ("model", "model_args", "random_init", "norm", "variant", "batch_size", "seed")


@dataclass
class RealignConfig:
    """A re-alignment run. None means: the paper's value for (norm, variant) (`resolve` fills it in)."""

    output: str  # run directory: checkpoint.pt, log.json, log.csv, best.pt
    model: str = "vit_base_patch16_224"
    model_args: dict = field(default_factory=dict)  # timm.create_model keyword arguments
    checkpoint: str | None = None  # pre-trained weights file (as `exprc extract --checkpoint`)
    random_init: bool = False
    norm: str = "gp"  # gp | dyt | ln
    layers: str | None = None  # GP: layers.json / Pareto CSV / kernels directory
    select: str = "val"  # GP: which point of a Pareto CSV
    layers_seed: int | None = None  # GP: only this Run_Seed of the paper code's Pareto CSV (one of its five sets)
    mode: str = "precise"  # GP: precision mode of the generated code
    fuse: bool = True  # GP: carry out the fusion plan (patch_timm(fuse=True))
    backend: str = "auto"  # GP: auto | triton | torch
    dyt_alpha: float = DYT_ALPHA_INIT
    variant: str = "F"
    epochs: int = PAPER_EPOCHS
    batch_size: int = PAPER_BATCH  # global: micro_batch x accumulation x processes
    micro_batch: int | None = None  # per process and forward pass (None: batch_size / processes)
    lr: float | None = None  # one rate for every group (overrides the three below)
    lr_backbone: float | None = None
    lr_affine: float | None = None
    lr_alpha: float | None = None
    weight_decay: float | None = None
    drop_path: float | None = None
    betas: tuple[float, float] = PAPER_BETAS
    distill_lambda: float = DISTILL_LAMBDA
    distill_tau: float = DISTILL_TAU
    data: str | None = None  # ImageFolder root with train/ and val/
    synthetic: int | None = None  # N random training images instead of data (N // 10 for validation)
    augment: bool = True  # DeiT's augmentation on training images (off: the evaluation transform)
    auto_augment: str = DEIT_AUTO_AUGMENT
    color_jitter: float = DEIT_COLOR_JITTER
    reprob: float = DEIT_REPROB
    crop_pct: float = EVAL_CROP_PCT
    workers: int = 4
    amp: str = "auto"  # auto (bf16 on CUDA, none on CPU) | bf16 | fp16 | none
    device: str | None = None  # default: cuda (this process's LOCAL_RANK) if available, else cpu
    deterministic: bool = False  # torch.use_deterministic_algorithms on a GPU (the CPU is deterministic anyway)
    seed: int = 0
    checkpoint_every: int = 500  # optimizer steps between mid-epoch checkpoints (0: only at epoch ends)
    max_steps: int | None = None  # stop after this many optimizer steps in all (a partial epoch is not evaluated)
    eval_original: bool = True  # also evaluate the original LayerNorm model before training (the reference)
    resume: bool = False
    progress: bool = True

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RealignConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)

    @property
    def label(self) -> str:
        """The paper's name for the run: GP-D, DyT-A, LN (LN-A, LN-D for the variants the paper does not have)."""
        kind = {"gp": "GP", "dyt": "DyT", "ln": "LN"}[self.norm]
        return "LN" if self.norm == "ln" and self.variant == "F" else f"{kind}-{self.variant}"


def paper_defaults(norm: str, variant: str) -> Defaults:
    check_choice("norm", norm, NORMS)
    check_choice("variant", variant, VARIANTS)
    return TABLE3[(norm, variant)]


def check_choice(what: str, value, choices) -> None:
    if value not in choices:
        raise ExprcError(f"--{what} must be one of {', '.join(map(str, choices))}, not {value!r}")


def resolve(config: RealignConfig) -> RealignConfig:
    """A copy of `config` with every None taken from Table 3, checked."""
    c = dataclasses.replace(config, model_args=dict(config.model_args))
    check_choice("variant", c.variant, VARIANTS)
    check_choice("norm", c.norm, NORMS)
    check_choice("amp", c.amp, AMP_MODES)
    d = paper_defaults(c.norm, c.variant)
    if c.lr is not None:
        c.lr_backbone = c.lr_backbone if c.lr_backbone is not None else c.lr
        c.lr_affine = c.lr_affine if c.lr_affine is not None else c.lr
        c.lr_alpha = c.lr_alpha if c.lr_alpha is not None else c.lr
    c.lr_backbone = c.lr_backbone if c.lr_backbone is not None else d.lr_backbone
    c.lr_affine = c.lr_affine if c.lr_affine is not None else d.lr_affine
    c.lr_alpha = c.lr_alpha if c.lr_alpha is not None else (d.lr_alpha if d.lr_alpha is not None else c.lr_affine)
    if c.variant == "A":
        c.lr_backbone = None  # frozen
    elif c.lr_backbone is None:
        c.lr_backbone = c.lr_affine
    c.weight_decay = c.weight_decay if c.weight_decay is not None else d.weight_decay
    c.drop_path = c.drop_path if c.drop_path is not None else d.drop_path
    _check(c)
    return c


def _check(c: RealignConfig) -> None:
    if c.norm == "gp" and not c.layers:
        raise ExprcError("--norm gp needs --layers (a layers.json, Pareto CSV or kernels directory)")
    if c.norm != "gp" and c.layers:
        raise ExprcError(f"--layers is for --norm gp; --norm {c.norm} replaces no layer by an expression")
    if (c.data is None) == (c.synthetic is None):
        raise ExprcError("give exactly one of --data DIR (train/ and val/ inside) and --synthetic N")
    if c.synthetic is not None and c.synthetic < 10:
        raise ExprcError("--synthetic must be at least 10 images")
    if c.checkpoint is not None and c.random_init:
        raise ExprcError("--checkpoint and --random-init exclude each other")
    positive = {"epochs": c.epochs, "batch-size": c.batch_size, "micro-batch": c.micro_batch,
                "max-steps": c.max_steps}
    for name, value in positive.items():
        if value is not None and value <= 0:
            raise ExprcError(f"--{name} must be positive, got {value}")
    for name in ("lr_backbone", "lr_affine", "lr_alpha", "weight_decay", "drop_path", "checkpoint_every", "workers"):
        value = getattr(c, name)
        if value is not None and value < 0:
            raise ExprcError(f"--{name.replace('_', '-')} must not be negative, got {value}")
    if not 0 <= c.drop_path < 1:
        raise ExprcError(f"--drop-path must be in [0, 1), got {c.drop_path}")
    if not 0 <= c.distill_lambda <= 1 or c.distill_tau <= 0:
        raise ExprcError("--distill-lambda must be in [0, 1] and --distill-tau positive")
    if not 0 < c.crop_pct <= 1:
        raise ExprcError(f"--crop-pct must be in (0, 1], got {c.crop_pct}")


def identity(c: RealignConfig, **digests: str | int | None) -> dict:
    """The fields a resumed run must share with the checkpoint's run, plus `digests` (of the expressions, the
    weights file, the number of training images)."""
    d = c.to_dict()
    return {**{k: d[k] for k in IDENTITY_FIELDS}, **digests}
