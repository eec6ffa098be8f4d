"""The tiny digits model: the ImageFolder writer, the training entry point (a few steps, never the real run), and
the committed example (weights, mappings, GP results) being what it says it is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
from PIL import Image  # noqa: E402

from exprc.cli import main  # noqa: E402
from exprc.data.digits import load_digit_arrays, split_indices, write_image_folder  # noqa: E402
from exprc.errors import ExprcError  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tiny_digits"


def test_splits_are_fixed_disjoint_and_complete():
    images, labels = load_digit_arrays()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and images.max() == 255
    train, val = split_indices("train", 1797), split_indices("val", 1797)
    assert len(val) == 359 and len(train) == 1438 and not set(train) & set(val)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(1797))
    np.testing.assert_array_equal(split_indices("val", 1797), val)


def test_image_folder_holds_the_split_by_label(tmp_path):
    images, labels = load_digit_arrays()
    assert write_image_folder(tmp_path / "val", "val") == 359
    files = sorted((tmp_path / "val").rglob("*.png"))
    assert len(files) == 359 and {f.parent.name for f in files} == {str(d) for d in range(10)}
    for f in files[::40]:
        i = int(f.stem)
        assert int(f.parent.name) == labels[i]
        np.testing.assert_array_equal(np.asarray(Image.open(f)), images[i])
    assert sorted(int(f.stem) for f in files) == split_indices("val", 1797).tolist()


def test_image_folder_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    root = tmp_path / "digits"
    write_image_folder(root, "val")
    with pytest.raises(ExprcError, match="exists"):
        write_image_folder(root, "train")
    calls = []

    def failing_save(self, *a, **k):
        calls.append(1)
        if len(calls) > 50:
            raise OSError("disk full")
        return real_save(self, *a, **k)

    real_save = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        write_image_folder(root, "train", overwrite=True)
    monkeypatch.undo()
    assert len(list(root.rglob("*.png"))) == 359  # the old tree, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits"]  # no half-written tree left beside it
    assert write_image_folder(root, "train", overwrite=True) == 1438
    assert len(list(root.rglob("*.png"))) == 1438


def test_train_command_writes_a_model_extract_can_load(tmp_path, capsys):
    pytest.importorskip("timm")
    from exprc.data.tiny_vit import MODEL, MODEL_KWARGS
    from exprc.gp.extract import load_model

    assert main(["digits", "train", "-o", str(tmp_path), "--epochs", "1", "--limit", "64"]) == 0
    info = json.loads((tmp_path / "model.json").read_text())
    assert info["model"] == MODEL and info["model_kwargs"] == MODEL_KWARGS and info["train"]["epochs"] == 1
    model = load_model(MODEL, str(tmp_path / "model.safetensors"), model_kwargs=MODEL_KWARGS)
    assert len([m for m in model.modules() if type(m).__name__ == "LayerNorm"]) == 9
    assert "--model-arg embed_dim=48" in capsys.readouterr().out
    assert info["train"]["schedule"] == "constant" and info["train"]["lr"] == 2e-3  # the defaults that bend
    assert main(["digits", "train", "-o", str(tmp_path / "onecycle"), "--epochs", "1", "--limit", "64",
                 "--schedule", "onecycle", "--lr", "1e-3", "--weight-decay", "0"]) == 0
    info = json.loads((tmp_path / "onecycle" / "model.json").read_text())
    assert info["train"]["schedule"] == "onecycle" and info["train"]["lr"] == 1e-3
    assert info["train"]["weight_decay"] == 0


def test_committed_weights_are_the_model_of_model_json():
    pytest.importorskip("timm")
    from safetensors.torch import load_file

    from exprc.data.tiny_vit import MODEL_KWARGS, accuracy, create_model, digit_tensors

    info = json.loads((EXAMPLE / "model.json").read_text())
    assert info["model_kwargs"] == MODEL_KWARGS and (EXAMPLE / "model.safetensors").stat().st_size < 1_000_000
    model = create_model()  # every tensor, the classifier too (timm's pretrained loader drops a 10-class head)
    model.load_state_dict(load_file(EXAMPLE / "model.safetensors"), strict=True)
    xs, ys = digit_tensors(model, "val")
    assert accuracy(model, xs, ys) == pytest.approx(info["val_accuracy"], abs=1e-6)
    assert info["val_accuracy"] > 0.9


def test_committed_gp_expressions_beat_dyt_and_a_line():
    """DyT falls clearly short of the committed GP expressions on every layer, and so does a least-squares line on
    most (R² on the validation points, as bench/gp_baselines.py reports them): the mappings bend, so the example
    tells a good search from a merely linear one (see examples/tiny_digits/README.md). Checked here so that it is
    noticed when the example changes."""
    import exprc
    from exprc.gp.compare import baselines
    from exprc.gp.mappings import load_mappings
    from exprc.gp.metrics import r2
    from exprc.gp.search import SearchConfig, split_train_val
    from exprc.ir import evaluate

    mappings = load_mappings(EXAMPLE / "mappings.npz")
    doc = json.loads((EXAMPLE / "layers.json").read_text())
    assert len(mappings.layers) == 9 and mappings.meta["weights"].endswith("model.safetensors")
    assert list(doc["layers"]) == list(mappings.layers)
    config = SearchConfig()
    over_line = []
    for name, entry in doc["layers"].items():
        m = mappings.layers[name]
        train, val = split_train_val(len(m.x), config.val_fraction, config.split_seed)
        gp_r2 = r2(m.y[val], evaluate(exprc.parse(entry["expr"]), m.x[val].astype(float)))
        assert gp_r2 == pytest.approx(entry["r2"], abs=1e-4)
        base = baselines(m.x, m.y, train, val, config.gamma)
        assert base["dyt"]["r2"] < gp_r2 - 0.05 and base["line"]["r2"] < gp_r2, (name, base, gp_r2)
        over_line.append(gp_r2 - base["line"]["r2"])
    assert sum(d > 0.01 for d in over_line) >= 8 and sum(d > 0.02 for d in over_line) >= 5, over_line
    assert np.mean(over_line) > 0.02, over_line  # R² over a least-squares line: 1 point on 8 of the 9 layers,
    # 2 points on 5 of them and on average (the first LayerNorm, the pixel embedding, is nearly straight)
