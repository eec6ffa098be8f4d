"""Extraction of LayerNorm mappings from a tiny random-init timm ViT (CPU, seconds)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
import torch.nn.functional as F  # noqa: E402

from exprc.cli import main  # noqa: E402
from exprc.errors import ExprcError  # noqa: E402
from exprc.gp.extract import extract_mappings, layer_norms, load_model, synthetic_batches  # noqa: E402
from exprc.gp.mappings import load_mappings  # noqa: E402

MODEL = "vit_tiny_patch16_224"
TINY = {"depth": 2, "img_size": 32}
NAMES = ["blocks.0.norm1", "blocks.0.norm2", "blocks.1.norm1", "blocks.1.norm2", "norm"]


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return load_model(MODEL, random_init=True, model_kwargs=TINY)


def _full_layer_inputs(model, images):
    """Every LayerNorm's whole input for `images`, by a hook of the test's own."""
    inputs = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=name: inputs.__setitem__(n, inp[0].detach().clone()))
             for name, m in layer_norms(model).items()]
    with torch.inference_mode():
        model(images)
    for h in hooks:
        h.remove()
    return inputs


def test_y_pre_is_layer_norm_without_affine(tiny_model):
    batches = list(synthetic_batches(tiny_model, 6, 4, seed=3))
    mappings = extract_mappings(tiny_model, iter(batches), 6, points=1500, seed=1, model_name=MODEL)
    assert mappings.names() == NAMES and mappings.model == MODEL
    per_batch = [_full_layer_inputs(tiny_model, b) for b in batches]  # same batches: same rounding
    inputs = {name: torch.cat([inp[name] for inp in per_batch]) for name in NAMES}
    norms = layer_norms(tiny_model)
    for name, m in mappings.layers.items():
        ln = norms[name]
        assert len(m.x) == len(m.y) == 1500 and m.eps == ln.eps and m.normalized_shape == (192,)
        # the exact pre-affine output, recomputed independently for every element of the input
        x_all = inputs[name]
        y_all = F.layer_norm(x_all.double(), ln.normalized_shape, eps=ln.eps).float()
        x_all, y_all = x_all.reshape(-1).numpy(), y_all.reshape(-1).numpy()
        order = np.argsort(x_all)
        pos = np.searchsorted(x_all[order], m.x)
        assert (x_all[order][np.minimum(pos, len(x_all) - 1)] == m.x).all(), "every sampled x is an input element"
        np.testing.assert_allclose(m.y, y_all[order][pos], rtol=1e-5, atol=1e-5)
        assert not np.allclose(m.y, m.x)  # the layer does something


def test_points_are_spread_over_batches(tiny_model):
    batches = list(synthetic_batches(tiny_model, 8, 3, seed=0))  # 3 + 3 + 2 images
    mappings = extract_mappings(tiny_model, iter(batches), 8, points=800, seed=0)
    inputs = [_full_layer_inputs(tiny_model, b)["norm"].reshape(-1).numpy() for b in batches]
    x = mappings.layers["norm"].x
    counts = [np.isin(x, inp).sum() for inp in inputs]
    assert counts == [300, 300, 200]


def test_too_many_points_is_a_user_error(tiny_model):
    with pytest.raises(ExprcError, match="lower --points"):
        extract_mappings(tiny_model, synthetic_batches(tiny_model, 1, 1, 0), 1, points=10**6)


def test_checkpoint_weights_are_loaded(tmp_path, tiny_model):
    path = tmp_path / "tiny.pth"
    torch.save(tiny_model.state_dict(), path)
    loaded = load_model(MODEL, checkpoint=str(path), model_kwargs=TINY)
    for (k, a), b in zip(tiny_model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    with pytest.raises(ExprcError, match="not found"):
        load_model(MODEL, checkpoint=str(tmp_path / "missing.pth"))
    with pytest.raises(ExprcError, match="no model named"):
        load_model("no_such_model_xyz", random_init=True)


def test_cli_extract_from_an_image_folder(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 255, size=(40, 50, 3), dtype=np.uint8)  # not square: resized and cropped
            Image.fromarray(pixels).save(tmp_path / "images" / cls / f"{i}.png")
    out = tmp_path / "m.npz"
    rc = main(["extract", "--model", MODEL, "--model-arg", "depth=2", "--model-arg", "img_size=32", "--random-init",
               "--images", str(tmp_path / "images"), "--points", "500", "--batch-size", "3", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    m = load_mappings(out)
    assert m.names() == NAMES and len(m.layers["norm"].x) == 500
    assert m.meta["num_images"] == 4 and m.meta["weights"] == "random" and m.meta["model_kwargs"] == TINY
    assert main(["extract", "--model", MODEL, "--random-init", "--images", str(tmp_path / "none"),
                 "-o", str(out)]) == 2
    assert "image directory not found" in capsys.readouterr().err


def test_a_bad_model_arg_is_named_not_blamed_on_weights(tmp_path, capsys):
    base = ["extract", "--model", MODEL, "--random-init", "--synthetic", "2", "--points", "50", "-o",
            str(tmp_path / "m.npz")]
    assert main(base + ["--model-arg", "depth=two", "--model-arg", "img_size=32"]) == 2
    err = capsys.readouterr().err
    assert "--model-arg depth=two: timm cannot build vit_tiny_patch16_224 with it (TypeError" in err, err
    assert "weights" not in err and "img_size" not in err  # the good argument is not blamed
    assert main(base + ["--model-arg", "dpeth=2"]) == 2
    assert "--model-arg dpeth=2: timm cannot build" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()


def test_cli_extract_writes_with_the_umask(tmp_path, capsys):
    import os
    import stat

    old = os.umask(0o022)
    try:
        rc = main(["extract", "--model", MODEL, "--model-arg", "depth=2", "--model-arg", "img_size=32",
                   "--random-init", "--synthetic", "2", "--points", "50", "-o", str(tmp_path / "m.npz")])
    finally:
        os.umask(old)
    assert rc == 0, capsys.readouterr().err
    assert stat.S_IMODE((tmp_path / "m.npz").stat().st_mode) == 0o644
