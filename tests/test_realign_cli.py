"""`exprc realign` options and errors, the paper's Table 3 as defaults, the accuracy plot, DeiT augmentation on
Pillow 13. Nothing here trains."""

from __future__ import annotations

import json

import pytest
from test_realign_support import model_flags

from exprc.cli import main
from exprc.train import RealignConfig, resolve


@pytest.mark.parametrize("norm, variant, backbone, affine, alpha, drop_path", [
    ("ln", "F", 1e-6, 1e-6, 1e-6, 0.1),
    ("gp", "A", None, 2e-3, 2e-3, 0.0),
    ("dyt", "A", None, 8e-3, 8e-3, 0.0),
    ("gp", "F", 1e-5, 1e-5, 1e-5, 0.1),
    ("dyt", "F", 2e-5, 1e-4, 5e-5, 0.0),
    ("gp", "D", 1e-5, 1e-5, 1e-5, 0.1),
    ("dyt", "D", 3e-5, 1e-4, 5e-5, 0.0),
])
def test_table3_defaults(norm, variant, backbone, affine, alpha, drop_path) -> None:
    c = resolve(RealignConfig(output="o", norm=norm, variant=variant, synthetic=100,
                              layers="l.json" if norm == "gp" else None))
    assert (c.lr_backbone, c.lr_affine, c.lr_alpha, c.weight_decay, c.drop_path) == \
        (backbone, affine, alpha, 0.0, drop_path)
    assert (c.epochs, c.batch_size, c.betas, c.distill_lambda, c.distill_tau, c.crop_pct) == \
        (20, 512, (0.9, 0.999), 0.5, 4.0, 0.875)


def test_one_rate_overrides_the_table_and_a_group_overrides_it() -> None:
    c = resolve(RealignConfig(output="o", norm="dyt", variant="D", synthetic=100, lr=1e-3, lr_alpha=7e-3))
    assert (c.lr_backbone, c.lr_affine, c.lr_alpha) == (1e-3, 1e-3, 7e-3)
    assert resolve(RealignConfig(output="o", norm="dyt", variant="A", synthetic=100, lr=1e-3)).lr_backbone is None


@pytest.mark.parametrize("args, message", [
    (["--synthetic", "64"], "--norm gp needs --layers"),
    (["--norm", "dyt", "--layers", "x.json", "--synthetic", "64"], "--layers is for --norm gp"),
    (["--norm", "dyt", "--synthetic", "5"], "--synthetic must be at least 10"),
    (["--norm", "dyt", "--synthetic", "64", "--batch-size", "16", "--micro-batch", "5"], "not a multiple"),
    (["--norm", "dyt", "--synthetic", "64", "--drop-path", "1.5"], "--drop-path must be in [0, 1)"),
    (["--norm", "ln", "--data", "/nonexistent/dir", "--batch-size", "8"], "train/ inside"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, args, message) -> None:
    assert main(["realign", *model_flags(), "-o", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("exprc realign: error:") and message in err and "Traceback" not in err, err


def test_missing_checkpoint_is_named(tmp_path, capsys) -> None:
    flags = [f for f in model_flags() if f != "--random-init"]
    assert main(["realign", *flags, "--checkpoint", str(tmp_path / "none.pth"), "--norm", "ln", "--synthetic", "64",
                 "-o", str(tmp_path / "run")]) == 2
    assert "checkpoint file not found" in capsys.readouterr().err


def test_unknown_model_is_named(tmp_path, capsys) -> None:
    assert main(["realign", "--model", "vit_nonexistent", "--random-init", "--norm", "ln", "--synthetic", "64",
                 "-o", str(tmp_path / "run")]) == 2
    assert "timm has no model named 'vit_nonexistent'" in capsys.readouterr().err


def _log(label: str, top1: list[float], original: float | None = 90.0) -> dict:
    return {"format": "exprc.realign-log/1", "label": label, "config": {},
            "original": {"top1": original, "top5": 99.0, "images": 8} if original is not None else None,
            "epochs": [{"epoch": e, "top1": t, "top5": 99.0} for e, t in enumerate(top1)]}


def test_plot_realign_draws_runs_and_keeps_the_mapping_mode(tmp_path, capsys) -> None:
    pytest.importorskip("matplotlib")
    runs = []
    for i, (label, curve) in enumerate([("GP-D", [40, 80, 85]), ("GP-D", [42, 82, 86]), ("DyT-A", [0, 70, 80])]):
        (tmp_path / f"r{i}").mkdir()
        (tmp_path / f"r{i}" / "log.json").write_text(json.dumps(_log(label, curve)))
        runs.append(str(tmp_path / f"r{i}"))
    out = tmp_path / "fig3.png"
    assert main(["plot", "--realign", *runs, "-o", str(out)]) == 0
    assert out.stat().st_size > 10_000 and "GP-D, DyT-A" in capsys.readouterr().out
    from exprc.train.plot import curves

    mean = curves([_log("GP-D", [40, 80, 85]), _log("GP-D", [42, 82, 86])])["GP-D"][1]
    assert list(mean) == [41, 81, 85.5]
    (tmp_path / "bad.json").write_text("{}")
    assert main(["plot", "--realign", str(tmp_path / "bad.json"), "-o", str(out)]) == 2
    assert "not a realign log" in capsys.readouterr().err
    assert main(["plot", "-o", str(out)]) == 2  # neither mode's inputs
    assert "give LAYERS and MAPPINGS" in capsys.readouterr().err


def test_deit_augmentation_posterizes_to_zero_bits_without_raising() -> None:
    """timm's RandAugment at magnitude 10 posterizes to 0 bits, which Pillow 13 refuses; a black image, as
    older Pillow gave."""
    from PIL import Image

    from exprc.train.data import transforms

    config = RealignConfig(output="o", norm="ln", synthetic=100)
    data_config = {"input_size": (3, 32, 32), "interpolation": "bicubic", "mean": (0.5,) * 3, "std": (0.5,) * 3}
    training, _ = transforms(config, data_config)
    ops = [op for t in training.transforms for op in getattr(t, "ops", ()) if op.name.startswith("Posterize")]
    assert ops
    image = Image.new("RGB", (32, 32), (200, 100, 50))
    for op in ops:
        level = op.level_fn(10.0, op.hparams)
        assert level == (0,)
        assert op.aug_fn(image, *level).getextrema() == ((0, 0), (0, 0), (0, 0))


def test_miniature_rates_and_table() -> None:
    """The miniature's runs take Table 3's rates times --lr-scale; its table puts GP and DyT side by side."""
    from pathlib import Path

    from exprc.train.miniature import parse_args, run_config, table

    args = parse_args(["-o", "out", "--lr-scale", "10"])
    c = run_config(args, Path("out"), "vit_tiny_patch16_224", {}, Path("w.safetensors"), Path("l.json"), "dyt", "F")
    assert (c.lr_backbone, c.lr_affine, c.lr_alpha, c.augment, c.crop_pct) == (2e-4, 1e-3, 5e-4, False, 1.0)
    assert c.output == str(Path("out") / "runs" / "dyt-f") and c.layers is None
    a = run_config(args, Path("out"), "m", {}, Path("w"), Path("l.json"), "gp", "A")
    assert a.lr_backbone is None and a.lr_affine == pytest.approx(2e-2) and a.layers == "l.json"
    logs = [_log("LN", [96.0, 96.5], original=96.0)]
    for kind, shock in (("GP", 60.0), ("DyT", 10.0)):
        logs += [_log(f"{kind}-{v}", [shock, 90.0 + i, 91.0 + i], original=None) for i, v in enumerate("AFD")]
    text = table(logs, args)
    assert "top-1 **96.00%**" in text
    assert "| -F (full) | 60.00 | 92.00 (ep 2) | 99.00 | 10.00 | 92.00 (ep 2) | 99.00 |" in text
