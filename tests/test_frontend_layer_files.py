"""Layer-file readers: layers.json (full and bare), Python mappings, the GP-LayerNorm Pareto CSV and Kozax fronts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from exprc import ExprcError, parse
from exprc.frontend.layer_files import read_layers
from exprc.ir import evaluate

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PAPER_HEADER = "Layer,Run_Seed,Complexity_Rank,FLOPs,Train_MSE,Val_MSE,Expression\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- layers.json ---------------------------------------------------------------------------------------------
def test_full_document(tmp_path):
    doc = {"format": "exprc.layers/1", "model": "vit_tiny", "clip": [-3, 4], "seed": 7,
           "layers": {"blocks.0.norm1": "-0.522*x + 2.11*clip(x)",
                      "norm": {"expr": "tanh(x)", "val_fitness": 0.1, "seed": 1}}}
    path = write(tmp_path, "layers.json", json.dumps(doc))
    ls = read_layers(path)
    assert [layer.name for layer in ls] == ["blocks.0.norm1", "norm"]
    assert ls.model == "vit_tiny" and ls.clip == (-3.0, 4.0)
    assert ls.layers["blocks.0.norm1"].ir is parse("-0.522*x + 2.11*clip(x)", (-3.0, 4.0))
    assert ls.layers["norm"].meta == {"val_fitness": 0.1, "seed": 1}
    assert ls.meta == {"format": "exprc.layers/1", "seed": 7}
    assert ls.source == str(path) and ls.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_bare_mapping_keeps_file_order(tmp_path):
    names = ["norm", "blocks.10.norm1", "blocks.2.norm2", "blocks.0.norm1"]
    path = write(tmp_path, "bare.json", json.dumps({n: f"{i}*x" for i, n in enumerate(names)}))
    ls = read_layers(path)
    assert [layer.name for layer in ls] == names
    assert ls.model is None and ls.clip == (-5.0, 5.0)


def test_python_mapping_accepted_directly():
    ls = read_layers({"format": "exprc.layers/1", "clip": (-2, 2), "layers": {"a.b": "clip(3*x)"}})
    assert float(evaluate(ls.layers["a.b"].ir, 10.0)) == 2.0
    assert ls.source is None and len(ls.sha256) == 64
    assert read_layers({"a": "x"}).layers["a"].expr == "x"


def test_clip_option_overrides_the_file(tmp_path):
    path = write(tmp_path, "l.json", json.dumps({"clip": [-5, 5], "layers": {"n": "clip(x)"}}))
    ls = read_layers(path, clip=(-1, 1))
    assert ls.clip == (-1.0, 1.0) and ls.layers["n"].ir.arg == (-1.0, 1.0)


def test_content_not_extension_decides(tmp_path):
    path = write(tmp_path, "layers.txt", ' \n{"n": "x*2"}')
    assert read_layers(path).layers["n"].ir is parse("x*2")
    csv_named_json = write(tmp_path, "front.dat", "Complexity,Fitness,Equation 0\n1.0,0.5,2*x\n")
    assert read_layers(csv_named_json, layer="n").layers["n"].ir is parse("2*x")


def test_utf8_bom_and_unicode_sigma(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"n": "σ(x)"}, ensure_ascii=False).encode())
    assert read_layers(path).layers["n"].ir is parse("sigmoid(x)")


# -- GP-LayerNorm Pareto CSV ---------------------------------------------------------------------------------
PAPER_ROWS = (
    "blocks.0.norm1,1,0,2.0,0.30,0.31,0.698*clip(x)\n"
    "blocks.0.norm1,1,1,3.0,0.11,0.12,2.11*clip(x) + neg(0.522*x)\n"
    "blocks.0.norm1,1,2,27.0,0.09,0.20,-0.141*x + 2.9*tanh(x) - 0.039\n"
    "blocks.0.norm1,2,0,50.0,0.05,0.10,tanh(x) + tanh(x + 0.27) + 0.1*x\n"
    "blocks.0.norm1,2,1,90.0,0.04,nan,\"clip(x, -1, 1)*tanh(x)*tanh(2*x)*tanh(3*x)\"\n"
    "norm,1,0,48.0,0.0764,0.1001,x*tanh(sigmoid(clip(-0.000308*x**2)))\n"
    "norm,1,1,1.0,0.2,0.3,3.08e-6*x\n"
)


@pytest.fixture
def paper_csv(tmp_path):
    return write(tmp_path, "gp_pareto_results.csv", PAPER_HEADER + PAPER_ROWS)


@pytest.mark.parametrize("select, seed, expected", [
    ("val", None, {"blocks.0.norm1": "tanh(x) + tanh(x + 0.27) + 0.1*x",
                   "norm": "x*tanh(sigmoid(clip(-0.000308*x**2)))"}),
    ("val", 1, {"blocks.0.norm1": "2.11*clip(x) + neg(0.522*x)", "norm": "x*tanh(sigmoid(clip(-0.000308*x**2)))"}),
    ("train", None, {"blocks.0.norm1": "clip(x, -1, 1)*tanh(x)*tanh(2*x)*tanh(3*x)",
                     "norm": "x*tanh(sigmoid(clip(-0.000308*x**2)))"}),
    ("simplest", None, {"blocks.0.norm1": "0.698*clip(x)", "norm": "3.08e-6*x"}),
    ("complexity", None, {"blocks.0.norm1": "0.698*clip(x)", "norm": "3.08e-6*x"}),
])
def test_paper_csv_selection(paper_csv, select, seed, expected):
    ls = read_layers(paper_csv, select=select, seed=seed)
    assert {layer.name: layer.expr for layer in ls} == expected
    assert ls.meta["format"] == "gp-layernorm-csv"
    assert ls.meta["select"] == {"complexity": "simplest"}.get(select, select)


def test_paper_csv_metadata(paper_csv):
    layer = read_layers(paper_csv, seed=1).layers["blocks.0.norm1"]
    assert layer.meta == {"seed": 1, "train_fitness": 0.11, "val_fitness": 0.12, "line": 3, "complexity_rank": 1,
                          "kozax_flops": 3.0, "candidates": 3}
    nan_row = read_layers(paper_csv, select="train").layers["blocks.0.norm1"]
    assert nan_row.meta["val_fitness"] is None  # NaN never reaches JSON metadata


def test_knee_of_a_paper_csv(tmp_path):
    # the FLOPs column (what the expressions cost as written): 1, 4, 5, 25, 48 -> the front bends at 5 FLOPs
    rows = ["L,1,0,1,0,0.50,2*x", "L,1,1,4,0,0.20,2*x + 3*x + 1", "L,1,2,5,0,0.10,2*x + 3*x + 4*x",
            "L,1,3,25,0,0.09,tanh(x) + 2*x", "L,1,4,48,0,0.085,tanh(x) + tanh(2*x)"]
    path = write(tmp_path, "p.csv", PAPER_HEADER + "\n".join(rows) + "\n")
    assert read_layers(path, select="knee").layers["L"].expr == "2*x + 3*x + 4*x"
    two = write(tmp_path, "two.csv", PAPER_HEADER + "\n".join(rows[:2]) + "\n")
    assert read_layers(two, select="knee").layers["L"].expr == "2*x + 3*x + 1"  # <= 2 points: the most accurate


def test_simplest_is_by_the_files_complexity_column(tmp_path):
    # the file's FLOPs or Complexity, not a cost exprc computes: tanh(x) is 23 FLOPs as written, 2*x + 1 two
    paper = write(tmp_path, "p.csv", PAPER_HEADER + "L,1,0,30,0.1,0.2,tanh(x)\nL,1,1,40,0.1,0.1,2*x + 1\n")
    assert read_layers(paper, select="simplest").layers["L"].expr == "tanh(x)"
    kozax = write(tmp_path, "norm.csv", "Complexity,Fitness,Equation 0\n5,0.2,tanh(x)\n9,0.1,2*x + 1\n")
    assert read_layers(kozax, select="simplest").layers["norm"].expr == "tanh(x)"


def test_simplest_without_a_complexity_column_counts_nodes(tmp_path):
    paper = write(tmp_path, "p.csv", "Layer,Run_Seed,Train_MSE,Val_MSE,Expression\nL,1,0.1,0.1,2*x + 3\n"
                                     "L,1,0.1,0.2,tanh(x)\n")
    assert read_layers(paper, select="simplest").layers["L"].expr == "tanh(x)"  # 2 IR nodes against 5
    kozax = write(tmp_path, "norm.csv", "Fitness,Equation 0\n0.1,2*x + 3\n0.2,tanh(x)\n")
    assert read_layers(kozax, select="simplest").layers["norm"].expr == "tanh(x)"


def test_knee_of_the_examples():
    # blocks.5.norm1's front is Complexity 2, 4, 6 with fitness 0.18, 0.070, 0.067: it bends at 4
    fronts = read_layers(EXAMPLES / "kozax_fronts", select="knee")
    assert {layer.name: layer.expr for layer in fronts} == {
        "blocks.5.norm1": "-0.0994*x + 0.699*clip(2.3*x)", "blocks.6.norm1": "2.58*tanh(x) + 0.24"}
    # seed 1 of blocks.0.norm1: FLOPs 2, 3, 4 (29 is dominated) with Val_MSE 0.312, 0.121, 0.1149: it bends at 3
    paper = read_layers(EXAMPLES / "gp_layernorm_pareto.csv", select="knee", seed=1)
    assert paper.layers["blocks.0.norm1"].expr == "2.11*clip(x) + neg(0.522*x)"


def test_paper_example_csv_reproduces_table4_for_seed_1():
    ls = read_layers(EXAMPLES / "gp_layernorm_pareto.csv", seed=1)
    table4 = read_layers(EXAMPLES / "vit_b16_paper.json")
    for layer in ls:
        assert layer.ir is table4.layers[layer.name].ir


# -- Kozax pareto_front.csv ----------------------------------------------------------------------------------
def test_kozax_single_file_named_by_directory(tmp_path):
    path = write(tmp_path, "blocks.3.norm2/pareto_front.csv",
                 "Complexity,Fitness,Equation 0\n"
                 "2.0,0.40,0.699*x\n"
                 "4.0,0.07,-0.0994*x + 0.699*clip(2.3*x)\n"
                 "9.0,0.09,((((-0.14215629)*(x))+(clip((x)*(2.3018188))))*(0.69904095))\n")
    ls = read_layers(path)
    assert list(ls.layers) == ["blocks.3.norm2"]
    assert ls.layers["blocks.3.norm2"].expr == "-0.0994*x + 0.699*clip(2.3*x)"
    assert ls.layers["blocks.3.norm2"].meta == {"train_fitness": 0.07, "line": 3, "complexity": 4.0, "candidates": 3}
    assert read_layers(path, layer="norm").layers["norm"].expr == "-0.0994*x + 0.699*clip(2.3*x)"


def test_kozax_unquoted_commas_and_array_fitness(tmp_path):
    # np.savetxt(fmt='%s') neither quotes an equation with commas nor flattens a multi-objective fitness
    path = write(tmp_path, "blocks.1.norm1.csv",
                 "Complexity,Fitness,Equation 0\n3.0,[0.25 0.5],clip(x, -1, 1) + 1\n5.0,[0.5 0.1],2*x\n")
    layer = read_layers(path).layers["blocks.1.norm1"]
    assert layer.ir is parse("clip(x, -1, 1) + 1")


def test_kozax_without_complexity_column(tmp_path):
    path = write(tmp_path, "norm.csv", "Fitness,Equation 0\n0.3,x\n0.2,tanh(x)\n")
    assert read_layers(path).layers["norm"].expr == "tanh(x)"


def test_kozax_directory_in_natural_order(tmp_path):
    for name, expr in [("blocks.10.norm1", "x"), ("blocks.2.norm1", "2*x"), ("norm", "3*x")]:
        write(tmp_path / "fronts", f"{name}/pareto_front.csv", f"Complexity,Fitness,Equation 0\n1.0,0.1,{expr}\n")
    write(tmp_path / "fronts", "blocks.9.norm2.csv", "Complexity,Fitness,Equation 0\n1.0,0.1,4*x\n")
    ls = read_layers(tmp_path / "fronts")
    assert [layer.name for layer in ls] == ["blocks.2.norm1", "blocks.9.norm2", "blocks.10.norm1", "norm"]
    assert ls.layers["blocks.9.norm2"].meta["file"] == "blocks.9.norm2.csv"
    first = ls.sha256
    write(tmp_path / "fronts", "norm/pareto_front.csv", "Complexity,Fitness,Equation 0\n1.0,0.1,5*x\n")
    assert read_layers(tmp_path / "fronts").sha256 != first


def test_example_kozax_fronts():
    ls = read_layers(EXAMPLES / "kozax_fronts")
    assert {layer.name: layer.expr for layer in ls} == {
        "blocks.5.norm1": "-0.488*x + clip(2.85*x) + 0.217", "blocks.6.norm1": "2.58*tanh(x) + 0.24"}
    single = read_layers(EXAMPLES / "kozax_fronts" / "blocks.6.norm1" / "pareto_front.csv")
    assert list(single.layers) == ["blocks.6.norm1"]


def test_selected_expression_evaluates_right(paper_csv):
    ir = read_layers(paper_csv, select="simplest").layers["norm"].ir
    x = np.linspace(-4, 4, 9)
    np.testing.assert_allclose(evaluate(ir, x), 3.08e-6 * x, rtol=1e-15)


def test_options_that_do_not_apply_are_refused(tmp_path, paper_csv):
    js = write(tmp_path, "l.json", '{"n": "x"}')
    with pytest.raises(ExprcError, match="seed"):
        read_layers(js, seed=1)
    with pytest.raises(ExprcError, match="layer"):
        read_layers(paper_csv, layer="norm")
    with pytest.raises(ExprcError, match="unknown selection 'best'"):
        read_layers(paper_csv, select="best")
