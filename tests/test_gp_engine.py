"""Engine `exprc`: the occupied-rows evaluator, its hand-written gradient, the population step against Kozax's
own `evaluate_population`, and batched (vmapped) searches against the same searches run one by one.

All on JAX's CPU backend with a population of 40 and 2,000 points; one Kozax engine serves every test, and
every GP test file, with the same settings (the evolution step compiles once a process: about a minute).
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("kozax")
import jax.numpy as jnp  # noqa: E402

from exprc.gp.kozax_engine import engine_for  # noqa: E402
from exprc.gp.kozax_fitness import chunked_data  # noqa: E402
from exprc.gp.pareto import ParetoArchive  # noqa: E402
from exprc.gp.population_fitness import (  # noqa: E402
    ConstantOptimization, make_population_evaluator, point_chunks, subsample_chunks,
)
from exprc.gp.search import SearchConfig, run_search, run_searches  # noqa: E402
from exprc.gp.search_loop import _step_functions  # noqa: E402

CONFIG = SearchConfig(population=40, generations=10)  # test_gp_search.py's: the same engine
DELTA, GAMMA = 7.0, 0.005


def _data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=n) * 1.5).astype(np.float32)
    return x, (2.5 * np.tanh(x) + 0.2 + 0.05 * rng.normal(size=n)).astype(np.float32)


@pytest.fixture(scope="module")
def engine():
    return engine_for(CONFIG)


@pytest.fixture(scope="module")
def trees(engine):
    """Real trees: a Kozax population after a few generations (bigger than the initial ones), all 20 rows. The
    steps are the searches' own compiled ones (one search axis in front)."""
    population = engine.gp.initialize_population(jax.random.PRNGKey(3))[None]
    x, y = _data()
    data = tuple(jnp.asarray(a)[None] for a in point_chunks(x, y, DELTA, GAMMA, engine.chunk("sequential")))
    evaluate, evolve, _ = _step_functions(engine, engine.evaluator(), False)
    for g in range(4):
        key = jax.random.PRNGKey(g)[None]
        fitness, t = evaluate(population, data, key)
        population = evolve(t, fitness, key)
    return population[0, 0, :, 0]


def _reference_loss(gp, tree, x, y):
    """The composite fitness through Kozax's own tree evaluator (JAX autodiff can differentiate it)."""
    f = jax.vmap(gp.tree_evaluator, in_axes=(None, 0))
    pred = f(tree[None], x[:, None])[:, 0]
    tails = f(tree[None], jnp.array([[-DELTA], [DELTA]]))[:, 0]
    return jnp.mean((pred - y) ** 2) + GAMMA * jnp.mean(tails ** 2)


def test_loss_and_gradient_match_autodiff_of_kozax_evaluator(engine, trees):
    x, y = _data()
    data = tuple(jnp.asarray(a) for a in point_chunks(x, y, DELTA, GAMMA, 512))

    def ours(tree):
        def chunk(acc, xyw):
            loss, grad = engine.tree_functions.loss_and_grad(tree, *xyw)
            return (acc[0] + loss, acc[1] + grad), None
        return jax.lax.scan(chunk, (jnp.float32(0), jnp.zeros(tree.shape[0])), data)[0]

    def reference(tree):
        return jax.value_and_grad(lambda v: _reference_loss(engine.gp, tree.at[:, 3].set(v), x, y))(tree[:, 3])

    loss, grad = jax.jit(jax.vmap(ours))(trees)
    ref_loss, ref_grad = jax.jit(jax.vmap(reference))(trees)
    ok = np.isfinite(ref_loss) & (ref_loss < 1e6)
    assert ok.sum() >= 30
    np.testing.assert_allclose(loss[ok], ref_loss[ok], rtol=2e-4)
    constants = np.asarray(trees[:, :, 0] == 1) & ok[:, None]
    assert constants.sum() >= 30 and np.any(np.asarray(trees[:, :, 0]) == engine.gp.string_to_node["tanh"])
    np.testing.assert_allclose(np.asarray(grad)[constants], np.asarray(ref_grad)[constants], rtol=2e-3, atol=1e-5)
    assert np.all(np.asarray(grad)[~np.asarray(trees[:, :, 0] == 1)] == 0)  # only constants have a gradient


def test_population_step_is_kozax_evaluate_population(engine, trees):
    """All points (--constant-points all): the same fitness and the same optimized constants as Kozax's own
    `evaluate_population` (with exprc's legacy evaluator), up to float32 rounding."""
    legacy = engine_for(SearchConfig(population=40, generations=10, engine="legacy"))
    legacy.archive = ParetoArchive(float(legacy.gp.max_fitness))
    x, y = _data()
    population = trees[None, :, None]
    theirs_fitness, theirs = legacy.gp.evaluate_population(population, chunked_data(x, y, DELTA),
                                                           jax.random.PRNGKey(0))
    legacy.archive = None
    data = tuple(jnp.asarray(a) for a in point_chunks(x, y, DELTA, GAMMA, 512))
    fitness, ours = jax.jit(engine.evaluator())(trees, data, jax.random.PRNGKey(0))
    theirs_fitness = np.asarray(theirs_fitness).reshape(-1)
    np.testing.assert_allclose(fitness, theirs_fitness, rtol=1e-3)
    np.testing.assert_allclose(ours[:, :, 3], np.asarray(theirs)[0, :, 0, :, 3], rtol=1e-3, atol=1e-4)
    assert np.any(np.asarray(ours[:, :, 3]) != np.asarray(trees[:, :, 3]))  # constants were optimized


def test_subsampled_steps_never_make_a_tree_worse(engine, trees):
    x, y = _data()
    data = tuple(jnp.asarray(a) for a in point_chunks(x, y, DELTA, GAMMA, 512))
    evaluate = jax.jit(make_population_evaluator(engine.tree_functions, ConstantOptimization(points=300),
                                                 float(engine.gp.max_fitness), chunk=512))
    plain = jax.jit(make_population_evaluator(engine.tree_functions, ConstantOptimization(steps=0),
                                              float(engine.gp.max_fitness), chunk=512))
    before, _ = plain(trees, data, None)
    after, optimized = evaluate(trees, data, jax.random.PRNGKey(1))
    assert np.all(np.asarray(after) <= np.asarray(before))
    assert np.sum(np.asarray(after) < np.asarray(before)) >= 5
    again, _ = plain(optimized, data, None)  # the fitness reported is the optimized trees' fitness on all points
    np.testing.assert_allclose(again, after, rtol=1e-5)


def test_subsample_keeps_the_anchors_and_the_objective():
    x, y = _data(n=1000)
    data = tuple(jnp.asarray(a) for a in point_chunks(x, y, DELTA, GAMMA, 256))
    xs, ys, ws = (np.asarray(a).reshape(-1) for a in subsample_chunks(data, jax.random.PRNGKey(0), 300, 256))
    assert np.isclose(ws.sum(), 1 + GAMMA, rtol=1e-5)  # 300 points of weight 1/300, two anchors of gamma/2
    assert {-DELTA, DELTA} <= set(xs[ws == GAMMA / 2].tolist())
    drawn = xs[np.isclose(ws, 1 / 300)]
    assert len(drawn) == 300 and len(set(drawn.tolist())) == 300 and set(drawn.tolist()) <= set(x.tolist())
    many = subsample_chunks(data, jax.random.PRNGKey(0), 1500, 256)  # more than there are: each point once
    np.testing.assert_allclose(np.asarray(many[2]).sum(), 1 + GAMMA, rtol=1e-5)


def test_batched_searches_are_the_searches_run_alone(engine, monkeypatch):
    """Two layers x two seeds vmapped together (the --device gpu layout, here on JAX's CPU) give each search the
    front it gets alone, up to float rounding in its last generations.

    Kozax's evolution step is a pure function of (population, fitness, key), and vmapping it needs another minute of
    XLA compilation; what batching can get wrong (each search's key, data, population and archive) is exprc's
    loop, so here a stand-in step moves each search's constants by noise from its own key."""
    def jitter(gp, population, fitness, key):
        noise = jax.random.normal(key, population.shape[:-1])
        return population.at[..., 3].add(jnp.where(population[..., 0] == 1, 0.3 * noise, 0.0))

    monkeypatch.setattr(engine, "evolve_step", jitter)
    steps = {k: v for k, v in engine.compiled.items() if k[0] != "evolve"}  # the compiled evaluations stay
    monkeypatch.setattr(engine, "compiled", steps)  # and the real evolution step for the other tests
    config = SearchConfig(population=40, generations=4, polish_steps=0)
    (x1, y1), (x2, y2) = _data(seed=1), _data(seed=2)
    y2 = np.clip(1.7 * x2, -2, 2).astype(np.float32)
    problems, seeds = [(x1, y1), (x2, y2), (x1, y1), (x2, y2)], [1, 1, 2, 2]
    batched = run_searches(problems, config, seeds, batched=True)
    fronts = set()
    for (x, y), seed, together in zip(problems, seeds, batched, strict=True):
        alone = run_search(x, y, config, seed)
        assert together.seed == seed
        best_alone = min(m["val_fitness"] for m in alone.front)
        best_together = min(m["val_fitness"] for m in together.front)
        assert best_together == pytest.approx(best_alone, rel=1e-3)
        assert [m["complexity"] for m in together.front] == [m["complexity"] for m in alone.front]
        fronts.add(tuple(m["expr"] for m in alone.front))
    assert len(fronts) == 4  # four different searches
