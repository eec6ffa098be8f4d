"""bench/gp_quality.py at CI scale: engine `exprc` against engine `legacy` (the previous engine, kept for this) on
the committed tiny digits mappings, paired by layer and seed, judged by exprc.gp.compare.paired.

The legacy side is recorded in tests/golden/gp_quality_legacy.json (its own engine compiles for minutes on a
2-core machine); `python tests/test_gp_quality.py` runs the legacy engine again and rewrites it. The new engine
runs here with the engine every GP test file shares (population 40)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("kozax")

from exprc.gp.compare import paired  # noqa: E402
from exprc.gp.layer_results import finalize_layer  # noqa: E402
from exprc.gp.mappings import load_mappings  # noqa: E402
from exprc.gp.search import SearchConfig, run_search  # noqa: E402

MAPPINGS = Path(__file__).resolve().parent.parent / "examples" / "tiny_digits" / "mappings.npz"
REFERENCE = Path(__file__).resolve().parent / "golden" / "gp_quality_legacy.json"
LAYERS, SEEDS, POINTS = ("blocks.0.norm2", "blocks.1.norm2", "norm"), (1, 2, 3), 1500  # 9 pairs: a steadier median
MARGIN = 0.10  # the bench's margin: no layer more than 10% worse
TIE = 0.005  # at this scale the engines tie (median difference +3e-6 of ~0.1): a tie within 0.5% passes


def _document(engine: str) -> dict:
    config = SearchConfig(population=40, generations=8, engine=engine)
    mappings = load_mappings(MAPPINGS)
    layers = {}
    for name in LAYERS:
        m = mappings.layers[name]
        m.x, m.y = m.x[:POINTS], m.y[:POINTS]
        fronts = {seed: run_search(m.x, m.y, config, seed).front for seed in SEEDS}
        entry = finalize_layer(m, fronts, config, "val")
        layers[name] = {"val_fitness": entry["val_fitness"], "r2": entry["r2"],
                        "seeds": [{k: s[k] for k in ("seed", "val_fitness", "r2")} for s in entry["seeds"]]}
    return {"layers": layers}


def test_new_engine_keeps_the_quality_of_the_legacy_engine():
    """The bench's verdict, with the median paired difference allowed to be a tie: 9 searches of population 40
    cannot tell a 0.01% difference from noise (bench/gp_quality.py, at the paper's scale, keeps median <= 0)."""
    old = json.loads(REFERENCE.read_text())
    result = paired(old, _document("exprc"), MARGIN)
    assert result["n_pairs"] == len(LAYERS) * len(SEEDS)
    typical = np.median([p["old"] for p in result["pairs"]])
    assert result["median_diff"] <= TIE * typical and result["worst_relative"] <= MARGIN, result


if __name__ == "__main__":  # rewrite the legacy engine's side
    doc = {"made_by": "python tests/test_gp_quality.py (engine legacy)", **_document("legacy")}
    REFERENCE.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {REFERENCE}", file=sys.stderr)
