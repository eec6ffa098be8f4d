"""The GP stage's pieces that need neither JAX nor torch: fronts, DyT fits, metrics, text tidying, files."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

import exprc
from exprc.atomic_write import atomic_write
from exprc.errors import ExprcError
from exprc.gp.dyt import fit_alpha
from exprc.gp.expr_text import tidy_expression
from exprc.gp.layer_results import finalize_layer, fronts_of, layers_document, summarize, write_json_atomic
from exprc.gp.mappings import LayerMapping, Mappings, load_mappings, save_mappings
from exprc.gp.metrics import r2, score
from exprc.gp.pareto import ParetoArchive, knee_index, select
from exprc.gp.report import alignment_table
from exprc.gp.search import SearchConfig, split_train_val
from exprc.ir import evaluate


# -- Pareto front ------------------------------------------------------------------------------------------------
def test_archive_keeps_best_per_complexity_and_drops_dominated():
    a = ParetoArchive(max_fitness=1e8)
    a.add(np.array([5.0, 3.0, 4.0, 1e8]), np.array([1, 1, 2, 0]), np.array(["a", "b", "c", "invalid"]))
    a.add(np.array([2.0, 0.5, np.nan]), np.array([3, 9, 0]), np.array(["d", "e", "nan"]))
    front = a.front()
    assert [(c, f, t) for c, f, t in front] == [(1.0, 3.0, "b"), (3.0, 2.0, "d"), (9.0, 0.5, "e")]  # c=2 dominated


def test_knee_is_the_elbow():
    complexity = [1, 2, 3, 10, 20]
    fitness = [1.0, 0.5, 0.011, 0.01, 0.0099]
    assert knee_index(complexity, fitness) == 2
    members = [{"complexity": c, "val_fitness": f} for c, f in zip(complexity, fitness, strict=True)]
    assert select(members, "knee")["complexity"] == 3
    assert select(members, "val")["complexity"] == 20


# -- metrics and DyT ---------------------------------------------------------------------------------------------
def test_r2_and_composite_fitness_by_hand():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    assert r2(y, y) == 1.0
    assert r2(y, np.full(4, 1.5)) == pytest.approx(0.0)
    fit = score(lambda v: 2 * v, np.array([1.0, 2.0]), np.array([2.0, 3.0]), delta=10.0, gamma=0.005)
    assert fit.mse == pytest.approx(0.5)  # errors 0 and 1
    assert fit.fitness == pytest.approx(0.5 + 0.005 * 400.0)  # f(+-10) = +-20


@pytest.mark.parametrize("alpha", [0.37, 2.5, -1.2])
def test_dyt_alpha_recovered(alpha):
    rng = np.random.default_rng(0)
    x = rng.normal(size=4000) * 3
    y = np.tanh(alpha * x) + 0.01 * rng.normal(size=4000)
    assert fit_alpha(x, y) == pytest.approx(alpha, rel=2e-3)


def test_dyt_alpha_is_the_least_squares_minimum():
    rng = np.random.default_rng(1)
    x = rng.normal(size=3000)
    y = 2.0 * np.tanh(0.8 * x) + 0.3  # not a DyT function: the fit is a compromise
    a = fit_alpha(x, y)
    loss = lambda al: np.sum((np.tanh(al * x) - y) ** 2)  # noqa: E731
    assert loss(a) <= min(loss(a * 0.999), loss(a * 1.001))


# -- expression text ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, tidy", [
    ("(clip((0.24785662)+((2.5605898)*(tanh((x)+(-0.01915595))))))*(0.9825825)",
     "clip(0.24785662+(2.5605898*tanh(x+-0.01915595)))*0.9825825"),
    ("(x)*(-1.5)", "x*-1.5"),
    ("neg((x)*(x))", "neg(x*x)"),
    ("(1e-05)*(sigmoid(x))", "1e-05*sigmoid(x)"),
    ("0.7702739", "0.7702739"),
])
def test_tidy_expression_keeps_meaning_and_digits(raw, tidy):
    assert tidy_expression(raw) == tidy
    assert exprc.parse(tidy) is exprc.parse(raw)
    xs = np.linspace(-6, 6, 101)
    np.testing.assert_array_equal(evaluate(exprc.parse(tidy), xs), evaluate(exprc.parse(raw), xs))


# -- files -------------------------------------------------------------------------------------------------------
def _mappings(n=400, seed=0) -> Mappings:
    rng = np.random.default_rng(seed)
    layers = {}
    for i, name in enumerate(["blocks.0.norm1", "blocks.0.norm2", "norm"]):
        x = rng.normal(size=n).astype(np.float32) * (i + 1)
        layers[name] = LayerMapping(x, np.tanh(x).astype(np.float32), 1e-6, (192,))
    return Mappings(layers, "vit_tiny_patch16_224", {"seed": seed})


def test_mappings_round_trip_and_paper_layout(tmp_path):
    m = _mappings()
    save_mappings(tmp_path / "m.npz", m)
    back = load_mappings(tmp_path / "m.npz")
    assert back.names() == m.names() and back.model == m.model and back.meta == {"seed": 0}
    assert back.layers["norm"].eps == 1e-6 and back.layers["norm"].normalized_shape == (192,)
    np.testing.assert_array_equal(back.layers["norm"].x, m.layers["norm"].x)
    # the paper's extract_mappings.py writes LAYER_x / LAYER_y and nothing else
    np.savez(tmp_path / "paper.npz", **{f"{k}_{s}": getattr(v, s) for k, v in m.layers.items() for s in "xy"})
    paper = load_mappings(tmp_path / "paper.npz")
    assert paper.names() == sorted(m.names()) and paper.layers["norm"].eps is None
    np.testing.assert_array_equal(paper.layers["norm"].y, m.layers["norm"].y)


def test_bad_mappings_file_is_a_user_error(tmp_path):
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(ExprcError, match="cannot read"):
        load_mappings(tmp_path / "bad.npz")
    np.savez(tmp_path / "empty.npz", other=np.zeros(3))
    with pytest.raises(ExprcError, match="no layers"):
        load_mappings(tmp_path / "empty.npz")


def _front(seed, exprs, x, y, delta):
    out = []
    for c, text in enumerate(exprs):
        f = lambda v, t=text: evaluate(exprc.parse(t), v)  # noqa: E731
        s = score(f, x, y, delta)
        out.append({"expr": text, "complexity": float(c), "nodes": 1, "train_fitness": s.fitness,
                    "val_fitness": s.fitness, "mse": s.mse, "r2": s.r2, "seed": seed})
    return out


def test_finalize_summarize_and_write_a_layers_file(tmp_path):
    m = _mappings()
    config = SearchConfig(population=4, generations=1)
    entries = {}
    for name, lm in m.layers.items():
        train, val = split_train_val(len(lm.x), 0.1, 0)
        x, y = lm.x[val].astype(float), lm.y[val].astype(float)
        fronts = {1: _front(1, ["x", "clip(x)", "tanh(x)"], x, y, 10.0),
                  2: _front(2, ["0.5*x", "tanh(0.9*x)"], x, y, 10.0)}
        entries[name] = finalize_layer(lm, fronts, config, "val", {1: 1.5, 2: 2.5})
        assert entries[name]["expr"] == "tanh(x)" and entries[name]["seed"] == 1
        assert entries[name]["r2"] == pytest.approx(1.0) and entries[name]["dyt"]["alpha"] == pytest.approx(1.0)
        assert fronts_of(entries[name]) == fronts
        assert [s["seconds"] for s in entries[name]["seeds"]] == [1.5, 2.5]
    summary = summarize(entries)
    assert summary["layers"] == 3 and summary["gp_seeds"]["seeds"] == 2
    assert summary["gp"]["mean_r2"] == pytest.approx(1.0)
    doc = layers_document(m.model, (-5.0, 5.0), entries, {"config": config.as_json()})
    write_json_atomic(tmp_path / "layers.json", doc)
    assert json.loads((tmp_path / "layers.json").read_text())["format"] == "exprc.layers/1"
    assert not list(tmp_path.glob("*.tmp"))
    layer_set = exprc.read_layers(tmp_path / "layers.json")
    assert [layer.name for layer in layer_set] == list(m.layers)
    table = alignment_table(doc)
    assert "blocks.0.norm2" in table and "Table 1" in table and "Dynamic Tanh" in table


@pytest.fixture
def umask():
    """Set the process umask for the test (restored after it)."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_gp_files_get_the_mode_the_umask_gives(tmp_path, umask, mask, mode):
    umask(mask)
    write_json_atomic(tmp_path / "layers.json", {"format": "exprc.layers/1", "layers": {}})
    save_mappings(tmp_path / "m.npz", _mappings(n=20))
    with atomic_write(tmp_path / "plain.bin", binary=True) as f:
        f.write(b"x")
    for name in ("layers.json", "m.npz", "plain.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layers.json", "m.npz", "plain.bin"]  # no leftovers


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "layers.json"
    path.write_text("old")
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["layers.json"]


def test_missing_optional_dependency_is_a_user_error():
    from exprc.gp.deps import require

    require("evolve", ("numpy",), "gp")
    with pytest.raises(ExprcError, match=r"pip install 'exprc\[gp\]'"):
        require("evolve", ("numpy", "no_such_module_xyz"), "gp")


def test_gp_commands_have_help_without_heavy_imports():
    import subprocess
    import sys

    code = ("import sys; from exprc.cli import build_parser; h = build_parser().format_help(); "
            "assert all(c in h for c in ('extract', 'evolve', 'plot')), h; "
            "heavy = [m for m in ('jax', 'kozax', 'timm', 'matplotlib') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_finished_searches_survive_a_kill(tmp_path):
    from dataclasses import replace

    from exprc.gp import runner
    from exprc.gp.search import SeedResult

    save_mappings(tmp_path / "m.npz", _mappings())
    m = load_mappings(tmp_path / "m.npz")
    plan = runner.EvolvePlan(tmp_path / "m.npz", m, m.names(), [1, 2], SearchConfig(population=4, generations=1),
                             "val", tmp_path / "layers.json", jobs=1)
    results = runner._Results(plan, log=lambda s: None)
    assert len(results.todo()) == 6
    member = {"expr": "tanh(x)", "complexity": 23.0, "nodes": 2, "train_fitness": 0.1, "val_fitness": 0.1,
              "mse": 0.0, "r2": 1.0, "seed": 1}
    results.add("norm", SeedResult(1, [member], 1.0, 0.5))
    with open(results.partial_path, "a") as f:
        f.write('{"layer": "norm", "se')  # killed while writing the next record
    again = runner._Results(plan, log=lambda s: None)  # a new run after the kill
    assert ("norm", 1) not in again.todo() and len(again.todo()) == 5
    assert again.fronts["norm"][1] == [member]
    with pytest.raises(ExprcError, match="another search settings"):
        runner._Results(replace(plan, config=SearchConfig(population=6, generations=1)), log=lambda s: None)
