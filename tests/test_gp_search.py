"""The Kozax search on CPU, kept short: one compiled engine (population 40, 2,000 points) serves every test, and
test_gp_engine.py's and test_gp_quality.py's tests with it (engine_for keeps one engine per process and settings).

Compiling Kozax's evolution step (about a minute) is most of the GP tests' time; the searches take seconds.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("kozax")

import exprc  # noqa: E402
from exprc.cli import main  # noqa: E402
from exprc.gp import executors, runner  # noqa: E402
from exprc.gp.executors import execute  # noqa: E402
from exprc.gp.mappings import LayerMapping, Mappings, save_mappings  # noqa: E402
from exprc.gp.pareto import select  # noqa: E402
from exprc.gp.kozax_engine import engine_for  # noqa: E402
from exprc.gp.search import SearchConfig, SeedResult, run_search  # noqa: E402
from exprc.gp.tree_eval import check_against_kozax, make_tree_evaluator  # noqa: E402
from exprc.ir import evaluate  # noqa: E402

POPULATION = 40
POINTS = 2000
CONFIG = SearchConfig(population=POPULATION, generations=10)


def _target(x):
    return 2.5 * np.tanh(x) + 0.2


@pytest.mark.parametrize("which", ["occupied rows (engine exprc)", "20-row scan (engine legacy)"])
def test_evaluators_match_kozax_and_exprc(which):
    engine = engine_for(CONFIG)
    gp = engine.gp
    evaluate_tree = jax.jit(engine.tree_functions.predict if "exprc" in which else make_tree_evaluator(gp, CONFIG.clip))
    population = gp.initialize_population(jax.random.PRNGKey(3))
    xs = np.linspace(-8, 8, 257)
    check_against_kozax(gp, evaluate_tree, population, xs)  # raises on any disagreement
    trees = np.asarray(population).reshape(-1, *population.shape[-3:])
    compared = 0
    for tree in trees[:25]:
        text = gp.tree_to_string(jax.numpy.asarray(tree[0]))
        ours = np.asarray(evaluate_tree(jax.numpy.asarray(tree[0]), jax.numpy.asarray(xs, "float32")))
        ref = evaluate(exprc.parse(text), xs)  # float64, from the printed text
        ok = np.isfinite(ref)
        np.testing.assert_allclose(ours[ok], ref[ok], rtol=1e-4, atol=1e-4, err_msg=text)
        compared += int(ok.any())
    assert compared >= 20


def test_recovers_a_known_function():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=POINTS) * 1.5).astype(np.float32)
    y = (_target(x) + 0.05 * rng.normal(size=POINTS)).astype(np.float32)
    result = run_search(x, y, CONFIG, seed=4)
    best = select(result.front, "val")
    assert best["r2"] > 0.99, best
    grid = np.linspace(-3, 3, 61)
    assert np.max(np.abs(evaluate(exprc.parse(best["expr"]), grid) - _target(grid))) < 0.15, best["expr"]
    complexity = [m["complexity"] for m in result.front]
    fitness = [m["train_fitness"] for m in result.front]
    assert complexity == sorted(complexity) and fitness == sorted(fitness, reverse=True)  # a Pareto front
    for m in result.front:  # Kozax's float32 fitness of the tree = exprc's float64 fitness of its text
        assert m["kozax_fitness"] == pytest.approx(m["train_fitness"], rel=1e-3, abs=1e-6), m["expr"]


def _mappings_file(path):
    rng = np.random.default_rng(1)
    layers = {}
    for name, f in (("blocks.0.norm1", lambda v: 0.6 * np.clip(2.4 * v, -5, 5)), ("norm", _target)):
        x = (rng.normal(size=POINTS) * 1.2).astype(np.float32)
        layers[name] = LayerMapping(x, (f(x) + 0.05 * rng.normal(size=POINTS)).astype(np.float32), 1e-6, (192,))
    save_mappings(path, Mappings(layers, "vit_tiny_patch16_224"))
    return path


def test_evolve_end_to_end_resume_check_compile_plot(tmp_path, capsys, monkeypatch):
    npz = _mappings_file(tmp_path / "mappings.npz")
    out = tmp_path / "layers.json"
    def evolve_args(generations=3):
        return ["evolve", str(npz), "-o", str(out), "--seeds", "1", "--population", str(POPULATION),
                "--generations", str(generations), "--jobs", "1", "--quiet"]

    base = evolve_args()
    assert main(base + ["--layers", "norm"]) == 0
    assert list(json.loads(out.read_text())["layers"]) == ["norm"]

    calls = []
    real = executors.run_search  # what the in-process executor calls for each search
    monkeypatch.setattr(executors, "run_search", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    assert main(base) == 0  # resumes: only the missing layer is searched
    assert calls == [1]
    captured = capsys.readouterr()
    assert "Table 1" in captured.out and "1 of 2 searches already done" in captured.err

    doc = json.loads(out.read_text())
    assert doc["format"] == "exprc.layers/1" and doc["model"] == "vit_tiny_patch16_224"
    assert list(doc["layers"]) == ["blocks.0.norm1", "norm"]  # model order, not finishing order
    assert doc["gp"]["config"]["population"] == POPULATION and doc["gp"]["summary"]["layers"] == 2
    assert not (tmp_path / "layers.json.partial.jsonl").exists()
    for name, entry in doc["layers"].items():
        root = exprc.parse(entry["expr"])
        assert entry["pareto"] and entry["dyt"]["alpha"] > 0 and entry["seeds"][0]["seed"] == 1
        assert entry["val_fitness"] == min(m["val_fitness"] for m in entry["pareto"])
        m = exprc.gp.mappings.load_mappings(npz).layers[name]
        pred = evaluate(root, m.x.astype(float))
        assert 1 - np.sum((pred - m.y) ** 2) / np.sum((m.y - m.y.mean()) ** 2) == pytest.approx(entry["r2"], abs=0.02)
        assert entry["r2"] > entry["dyt"]["r2"]  # DyT cannot reach beyond +-1
    constants = re.findall(r"\d+\.\d+", " ".join(m["expr"] for e in doc["layers"].values() for m in e["pareto"]))
    assert any(len(c.replace(".", "").lstrip("0")) > 4 for c in constants)  # full precision, not 3 digits

    layer_set = exprc.read_layers(out)
    assert [layer.name for layer in layer_set] == ["blocks.0.norm1", "norm"]
    assert main(["check", str(out)]) == 0
    assert main(["compile", str(out), "-o", str(tmp_path / "kernels")]) == 0
    assert (tmp_path / "kernels" / "manifest.json").exists()
    assert main(["plot", str(out), str(npz), "-o", str(tmp_path / "fig.png")]) == 0
    assert (tmp_path / "fig.png").stat().st_size > 10_000

    calls.clear()
    assert main(base + ["--select", "knee"]) == 0  # chooses again from the stored fronts, searches nothing
    assert calls == [] and json.loads(out.read_text())["gp"]["select"] == "knee"
    capsys.readouterr()
    assert main(evolve_args(generations=4)) == 2  # other settings: refuses to mix
    assert "another search settings" in capsys.readouterr().err


def _fake_task(x, y, config, seed, ticks):
    """Stands in for a search in the worker processes: reports its generations, returns a one-member front."""
    for _ in range(config.generations):
        ticks.put(1)
    member = {"expr": f"{seed}*x", "complexity": 1.0, "nodes": 3, "train_fitness": float(seed),
              "val_fitness": float(seed), "mse": 0.0, "r2": 1.0, "seed": seed}
    return SeedResult(seed, [member], 1.0, 0.0)


def test_parallel_workers_report_progress_and_results(tmp_path):
    npz = _mappings_file(tmp_path / "mappings.npz")
    mappings = exprc.gp.mappings.load_mappings(npz)
    plan = runner.EvolvePlan(npz, mappings, mappings.names(), [1, 2], SearchConfig(population=4, generations=3),
                             "val", tmp_path / "out.json", jobs=2)
    ticks, results = [], []
    execute([("norm", 1), ("norm", 2), ("blocks.0.norm1", 1)], plan, ticks.append,
            lambda layer, r: results.append((layer, r.seed, r.front[0]["expr"])), task=_fake_task)
    assert sum(ticks) == 9
    assert sorted(results) == [("blocks.0.norm1", 1, "1*x"), ("norm", 1, "1*x"), ("norm", 2, "2*x")]
