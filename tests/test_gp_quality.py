"""bench/gp_quality.py at CI scale: engine `exprc` against engine `legacy` (the previous engine, kept for this) on
the committed tiny digits mappings, paired by layer and seed, judged by exprc.gp.compare.paired."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("kozax")

from exprc.gp.compare import paired  # noqa: E402
from exprc.gp.layer_results import finalize_layer  # noqa: E402
from exprc.gp.mappings import load_mappings  # noqa: E402
from exprc.gp.search import SearchConfig, run_search  # noqa: E402

MAPPINGS = Path(__file__).resolve().parent.parent / "examples" / "tiny_digits" / "mappings.npz"
LAYERS, SEEDS, POINTS = ("blocks.1.norm2", "norm"), (1, 2), 1500
MARGIN = 0.10  # the bench's margin: no layer more than 10% worse


def _document(engine: str) -> dict:
    config = SearchConfig(population=40, generations=8, engine=engine)
    mappings = load_mappings(MAPPINGS)
    layers = {}
    for name in LAYERS:
        m = mappings.layers[name]
        m.x, m.y = m.x[:POINTS], m.y[:POINTS]
        fronts = {seed: run_search(m.x, m.y, config, seed).front for seed in SEEDS}
        layers[name] = finalize_layer(m, fronts, config, "val")
    return {"layers": layers}


def test_new_engine_keeps_the_quality_of_the_legacy_engine():
    result = paired(_document("legacy"), _document("exprc"), MARGIN)
    assert result["n_pairs"] == len(LAYERS) * len(SEEDS)
    assert result["kept"], result
