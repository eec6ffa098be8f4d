"""exprc's two-objective NSGA-II (exprc/gp/nsga2.py) gives Kozax's `nsga2` ranks and crowding distances exactly."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("kozax")
from kozax.genetic_operators.reproduction import nsga2  # noqa: E402

from exprc.gp.nsga2 import nsga2_two_objectives  # noqa: E402


def _populations(n: int) -> np.ndarray:
    """Populations of n points (P, n, 2): no ties, ties and identical points, the search's kind of values (max
    fitness 1e8, few complexities), and for n > 3 all identical points and a chain of one point per front."""
    rng = np.random.default_rng(n)
    fitness = rng.choice([0.1, 0.25, 0.5, 1e8], n) * rng.choice([1.0, 1.0, 0.5], n)
    kinds = [rng.random((n, 2)), rng.integers(0, 4, (n, 2)),
             np.stack([fitness, rng.choice([5.0, 6.0, 28.0, 51.0, 74.0], n)], 1)]
    if n > 3:
        kinds += [np.zeros((n, 2)), np.stack([np.arange(n), np.arange(n)], 1)]
    return np.stack(kinds).astype(np.float32)


@pytest.mark.parametrize("n", [1, 3, 64, 500])
def test_ranks_and_crowding_are_kozax(n):
    metrics = jax.numpy.asarray(_populations(n))
    ours = jax.jit(jax.vmap(nsga2_two_objectives))(metrics)
    theirs = jax.jit(jax.vmap(nsga2))(metrics)
    assert int(np.asarray(theirs[0]).max()) >= min(n - 1, 3)  # several fronts
    np.testing.assert_array_equal(np.asarray(ours[0]), np.asarray(theirs[0]))
    np.testing.assert_array_equal(np.asarray(ours[1]), np.asarray(theirs[1]))
