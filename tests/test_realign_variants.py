"""Re-alignment of a tiny ViT on an ImageFolder the test writes: each variant learns, -A trains only the norms,
-D's loss is the paper's equation (4).

The "pre-trained" model is a random-init tiny ViT fine-tuned here with its LayerNorms (`--norm ln`, 40 steps:
itself the first check), saved as best.pt and loaded back through --checkpoint (classifier included), as a real
model would be. Each variant then replaces its LayerNorms (GP expressions or DyT: the loss jumps, the "shock") and
trains with full batches (every step sees the same 32 images), so the loss of step N against step 1 measures
learning, not batch noise. Fixed seeds.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from test_realign_support import tiny_config, write_image_folder, write_layers

from exprc.train import realign, resolve
from exprc.train.loss import Loss


@pytest.fixture
def one_thread():
    """One intra-op thread: on a shared 2-core machine two threads contend and run ~10x slower."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("realign")
    data = write_image_folder(tmp / "data", train_per_class=8, val_per_class=2)
    losses = []
    realign(tiny_config(tmp / "pretrained", data, norm="ln", variant="F", epochs=10, batch_size=8, augment=False,
                        lr=3e-3, drop_path=0.0), on_step=lambda s: losses.append(s.loss))
    torch.set_num_threads(saved)
    return SimpleNamespace(tmp=tmp, data=data, layers=write_layers(tmp / "layers.json"),
                           checkpoint=tmp / "pretrained" / "best.pt", pretrain_losses=losses)


def variant_config(tiny, name: str, norm: str, variant: str, **kw):
    base = {"batch_size": 32, "augment": False, "drop_path": 0.0}
    return tiny_config(tiny.tmp / name, tiny.data, norm=norm, variant=variant, random_init=False,
                       checkpoint=str(tiny.checkpoint), layers=str(tiny.layers) if norm == "gp" else None,
                       **{**base, **kw})


def test_random_init_vit_learns_with_layernorm(tiny) -> None:
    first, last = tiny.pretrain_losses[0], sum(tiny.pretrain_losses[-4:]) / 4
    assert len(tiny.pretrain_losses) == 40 and last < 0.3 * first, tiny.pretrain_losses


# (norm, variant, learning rate, steps, the fraction of the first step's loss that step N's must be below)
# (measured with seed 0: GP 0.70, 0.18, 0.23; DyT 0.86, 0.43, 0.42)
CASES = [
    ("gp", "A", 2e-2, 8, 0.9),
    ("gp", "F", 3e-3, 8, 0.5),
    ("gp", "D", 3e-3, 8, 0.5),
    ("dyt", "A", 2e-2, 8, 0.9),
    ("dyt", "F", 3e-3, 8, 0.5),
    ("dyt", "D", 3e-3, 8, 0.5),
]


@pytest.mark.parametrize("norm, variant, lr, steps, fraction", CASES,
                         ids=[f"{n}-{v}" for n, v, *_ in CASES])
def test_variant_learns(tiny, one_thread, norm: str, variant: str, lr: float, steps: int, fraction: float) -> None:
    losses = []
    result = realign(variant_config(tiny, f"{norm}-{variant}", norm, variant, lr=lr, epochs=steps),
                     on_step=lambda s: losses.append(s.loss))
    assert len(losses) == steps
    assert losses[-1] < fraction * losses[0], losses
    assert [r["epoch"] for r in result.epochs] == list(range(steps + 1))


def _initial_student(config):
    from exprc.train.models import build_models

    return build_models(resolve(config), torch.device("cpu"), keep_teacher=False).student


@pytest.mark.parametrize("norm", ["gp", "dyt"])
def test_affine_variant_changes_only_norm_parameters(tiny, one_thread, norm: str) -> None:
    config = variant_config(tiny, f"only-norms-{norm}", norm, "A", lr=2e-2, epochs=3)
    before = {k: v.clone() for k, v in _initial_student(config).state_dict().items()}
    after = realign(config).model.state_dict()
    assert before.keys() == after.keys()
    norm_names = ("norm1.", "norm2.", "norm.")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    norm_keys = {k for k in before if any(k.startswith(p) or f".{p}" in k for p in norm_names)}
    assert changed <= norm_keys, sorted(changed - norm_keys)
    expected = {k for k in norm_keys if k.endswith((".weight", ".bias", ".alpha"))}
    assert changed == expected  # every norm's weight and bias (and DyT's alpha) moved
    if norm == "dyt":
        assert any(k.endswith(".alpha") for k in changed)


def test_distillation_loss_by_hand() -> None:
    """Two classes, logits chosen so that every softmax is a simple fraction."""
    ln3 = math.log(3)
    labels = torch.tensor([1])
    teacher = torch.tensor([[0.0, 0.0]])  # p_t = (1/2, 1/2) at any temperature
    # lambda 0.5, tau 4: student (0, 4 ln 3): p_s/tau = (1/4, 3/4); at tau 1 (1/82, 81/82)
    # CE = ln(82/81); KL(t||s) = 1/2 ln(2/(1/2)... = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3); L = 0.5 CE + 0.5*16*KL
    got = Loss(0.5, 4.0)(torch.tensor([[0.0, 4 * ln3]]), labels, teacher)
    assert float(got) == pytest.approx(0.5 * math.log(82 / 81) + 4 * math.log(4 / 3), rel=1e-6)
    # lambda 0.25, tau 2: student (0, 2 ln 3): at tau 2 (1/4, 3/4), at tau 1 (1/10, 9/10)
    got = Loss(0.25, 2.0)(torch.tensor([[0.0, 2 * ln3]]), labels, teacher)
    assert float(got) == pytest.approx(0.75 * math.log(10 / 9) + 0.25 * 4 * 0.5 * math.log(4 / 3), rel=1e-6)
    assert float(Loss()(torch.tensor([[0.0, 2 * ln3]]), labels)) == pytest.approx(math.log(10 / 9), rel=1e-6)


def test_distillation_run_uses_the_formula_with_the_original_model(tiny, one_thread) -> None:
    """The loss of a -D run's first step, recomputed by hand from the first batch, the student before the step
    and the original LayerNorm model (lambda 0.3 and tau 2, so that lambda and 1 - lambda cannot be swapped)."""
    from exprc.train.data import build_data
    from exprc.train.distributed import World
    from exprc.train.models import build_models

    config = variant_config(tiny, "distill-formula", "gp", "D", lr=1e-3, epochs=1, distill_lambda=0.3,
                            distill_tau=2.0, batch_size=8, max_steps=1)
    models = build_models(resolve(config), torch.device("cpu"), keep_teacher=True)
    data = build_data(resolve(config), models.student, World(0, 1, 0, torch.device("cpu")), 8)
    data.sampler.set_position(0, 0)
    images, labels = next(iter(data.train))
    with torch.no_grad():
        s, t = models.student.train()(images).double(), models.teacher(images).double()
    ce = -torch.log_softmax(s, -1)[torch.arange(len(labels)), labels].mean()
    p_t = torch.softmax(t / 2, -1)
    kl = (p_t * (torch.log(p_t) - torch.log_softmax(s / 2, -1))).sum(-1).mean()
    expected = 0.7 * ce + 0.3 * 4 * kl
    losses = []
    realign(config, on_step=lambda st: losses.append(st.loss))
    assert losses[0] == pytest.approx(float(expected), rel=1e-5)
    assert kl > 1e-4  # the replacement changed the logits: the KL term is not vacuous


def test_checkpoint_loads_every_tensor_the_classifier_too(tiny) -> None:
    """timm's pretrained path would drop a 4-class head (its default is 1000 classes): the teacher and the
    student must start from the file's classifier."""
    import dataclasses

    from exprc import ExprcError
    from exprc.train.models import load_original

    saved = torch.load(tiny.checkpoint, weights_only=True)
    config = variant_config(tiny, "load", "ln", "F")
    loaded = load_original(resolve(config)).state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    wrong = dataclasses.replace(config, model_args={**config.model_args, "num_classes": 7})
    with pytest.raises(ExprcError, match=r"cannot load the weights of .*size mismatch for head.weight.*num_classes"):
        load_original(resolve(wrong))
