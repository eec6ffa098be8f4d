"""The layers the benchmarks measure: the paper's 25 ViT-B/16 expressions (Appendix D, Table 4) by default.

They are built in, so that `exprc bench` works from a pip install without the repository's `examples/`; the signs
are those of the table's typeset formulas (its plain-text column drops leading minus signs). A test checks that
they agree with `examples/vit_b16_paper.json`. `--layers FILE` benchmarks another layer file instead.
"""

from __future__ import annotations

import exprc

from ..frontend.layer_set import Layer, LayerSet
from ..frontend.parse import parse

PAPER_TABLE4: dict[str, str] = {
    "blocks.0.norm1": "-0.522*x + 2.11*clip(x)",
    "blocks.0.norm2": "0.698*clip(2.31*x)",
    "blocks.1.norm1": "0.668*clip(2.38*x)",
    "blocks.1.norm2": "0.576*clip(3.64*x)",
    "blocks.2.norm1": "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)",
    "blocks.2.norm2": "2.5*tanh(clip(x)) + 0.135",
    "blocks.3.norm1": "-0.141*x + 2.9*tanh(x) + 0.158",
    "blocks.3.norm2": "-0.687*x + clip(1.99*x) + clip(clip(tanh(x)) + 0.154)",
    "blocks.4.norm1": "(x + 0.0719)*(-0.307*x*tanh(2.99*x) + 2.46)",
    "blocks.4.norm2": "2.66*tanh(clip(x)) + 0.208",
    "blocks.5.norm1": "-0.488*x + clip(2.85*x) + 0.217",
    "blocks.5.norm2": "-0.247*x + clip(2.44*x) + 0.233",
    "blocks.6.norm1": "2.58*tanh(x) + 0.24",
    "blocks.6.norm2": "-0.192*x + clip(2.17*x) + 0.222",
    "blocks.7.norm1": "2.35*tanh(clip(x)) + 0.239",
    "blocks.7.norm2": "0.862*clip(x) + 0.862*clip(-0.077*x + clip(x)) + 0.172",
    "blocks.8.norm1": "tanh(x) + tanh(x + 0.27)",
    "blocks.8.norm2": "clip(x) + clip(-0.555*x + clip(x)) + 0.225",
    "blocks.9.norm1": "0.541*clip(clip(2.35*x)) + 0.174",
    "blocks.9.norm2": "clip(0.471*clip(2.58*x)) + 0.212",
    "blocks.10.norm1": "-0.0307*x + clip(x) + 0.178",
    "blocks.10.norm2": "clip(-0.106*x) + clip(x) + 0.154",
    "blocks.11.norm1": "-0.0337*x + 0.597*clip(x) + 0.0932",
    "blocks.11.norm2": "clip(x*tanh(sigmoid(-0.0401*x*tanh(x))))",
    "norm": "x*tanh(sigmoid(clip(-0.000308*x**2)))",
}

# what the smoke run and the epilogue bench measure instead of all 25: the cheapest layer (one clip), the one whose
# two tanh share an exp, and the most expensive (76 FLOPs per element as written)
QUICK_LAYERS = ("blocks.0.norm2", "blocks.2.norm1")
EPILOGUE_LAYERS = ("blocks.0.norm2", "blocks.8.norm1", "blocks.2.norm1")


def paper_layer_set() -> LayerSet:
    layers = {name: Layer(name, text, parse(text)) for name, text in PAPER_TABLE4.items()}
    return LayerSet(layers, model="vit_base_patch16_224", source="paper Table 4 (built into exprc.benchmarks)")


def load_layer_set(path: str | None) -> LayerSet:
    """The paper's layers, or those of a layer file (read by `exprc.read_layers`)."""
    if path is None:
        return paper_layer_set()
    return exprc.read_layers(path)


def pick(layer_set: LayerSet, names: tuple[str, ...]) -> list[Layer]:
    """The named layers where the set has them, else its first len(names) layers."""
    chosen = [layer_set.layers[n] for n in names if n in layer_set.layers]
    return chosen or list(layer_set)[: len(names)]
