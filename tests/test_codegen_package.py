"""The package writer: one file per distinct lowered expression, a manifest that describes them, deterministic
output, atomic replacement of the output directory, and layer names kept out of generated code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from exprc import compiler
from exprc.codegen import replace_dir
from exprc.codegen.package_writer import FORMAT
from exprc.compiler import build_package, write_package
from exprc.errors import ExprcError
from exprc.frontend.layer_files import read_layers
from exprc.frontend.layer_set import Layer, LayerSet
from exprc.frontend.parse import parse

ROOT = Path(__file__).resolve().parents[1]
PAPER_FILE = ROOT / "examples" / "vit_b16_paper.json"


def snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.fixture(scope="module")
def paper():
    return read_layers(PAPER_FILE)


def test_manifest_describes_the_package(paper, tmp_path) -> None:
    out = write_package(paper, tmp_path / "kernels")
    files = snapshot(out)
    manifest = json.loads(files["manifest.json"])
    assert manifest["format"] == FORMAT and manifest["options"]["mode"] == "auto"  # the default
    digest = hashlib.sha256(PAPER_FILE.read_bytes()).hexdigest()
    assert manifest["source"] == {"file": "vit_b16_paper.json", "sha256": digest}
    assert [e["name"] for e in manifest["layers"]] == list(paper.layers)
    assert [e["expr"] for e in manifest["layers"]] == [layer.expr for layer in paper]
    assert set(manifest["files"]) == set(files) - {"manifest.json"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == digest
    for entry in manifest["layers"]:
        assert entry["kernel"] in files and entry["kernel"].startswith("e_")
        assert entry["cost"]["flops_paper"] >= entry["cost"]["flops_optimized"] >= 0
        assert entry["placement"] in ("epilogue", "prologue", "standalone") and entry["reason"]
        assert set(entry["lowering"]) == {"float32", "bfloat16", "float16"}  # auto: each storage dtype's lowering
        assert entry["lowering"]["float32"] == "precise"
    assert sum(e["cost"]["flops_paper"] for e in manifest["layers"]) == 474
    text = files[manifest["layers"][0]["kernel"]].decode()
    assert json.dumps(paper.layers["blocks.0.norm1"].expr) in text  # the header names the source expression


def test_identical_lowered_ir_shares_one_file(tmp_path) -> None:
    ls = read_layers({"a": "2*x", "b": "x*2", "c": "x+x", "d": "tanh(x)"})
    manifest = json.loads(build_package(ls)["manifest.json"])
    kernels = {e["name"]: e["kernel"] for e in manifest["layers"]}
    assert kernels["a"] == kernels["b"] != kernels["d"]
    assert len(manifest["files"]) == len(set(kernels.values()))


def test_output_is_deterministic(paper, tmp_path) -> None:
    first = snapshot(write_package(paper, tmp_path / "one", mode="fast"))
    second = snapshot(write_package(paper, tmp_path / "two", mode="fast"))
    assert first == second
    assert snapshot(write_package(paper, tmp_path / "one", mode="fast")) == first  # rewriting in place, too


def test_committed_kernels_match_a_fresh_compile(paper, tmp_path) -> None:
    committed = ROOT / "kernels"
    mode = json.loads((committed / "manifest.json").read_text())["options"]["mode"]
    assert snapshot(write_package(paper, tmp_path / "fresh", mode=mode)) == snapshot(committed)


def test_failure_half_way_leaves_the_old_directory_whole(paper, tmp_path, monkeypatch) -> None:
    out = write_package(read_layers({"old": "tanh(x)"}), tmp_path / "kernels")
    before = snapshot(out)
    real_write = Path.write_bytes
    written = []

    def flaky_write(self, data):
        written.append(self.name)
        if len(written) == 5:
            raise OSError("disk full (simulated)")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", flaky_write)
    with pytest.raises(OSError, match="simulated"):
        write_package(paper, out)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kernels"]  # no temporary directory left behind


def test_failure_while_generating_leaves_the_old_directory_whole(paper, tmp_path, monkeypatch) -> None:
    out = write_package(read_layers({"old": "tanh(x)"}), tmp_path / "kernels")
    before = snapshot(out)
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("generator bug (simulated)")
        return "# generated\n"

    monkeypatch.setattr(compiler.CompiledExpr, "source", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        write_package(paper, out)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kernels"]


def test_replacement_without_renameat2(paper, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(replace_dir, "_exchange", lambda a, b: False)
    out = write_package(read_layers({"old": "tanh(x)"}), tmp_path / "kernels")
    write_package(paper, out)
    assert len(json.loads((out / "manifest.json").read_text())["layers"]) == len(paper)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kernels"]


def test_refuses_to_replace_what_it_did_not_write(tmp_path) -> None:
    ls = read_layers({"a": "x"})
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    with pytest.raises(ExprcError, match="refusing to replace"):
        write_package(ls, foreign)
    assert (foreign / "thesis.tex").read_text() == "years of work"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExprcError, match="not a directory"):
        write_package(ls, tmp_path / "file")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (write_package(ls, empty) / "manifest.json").exists()


def test_layer_names_never_reach_generated_code(tmp_path) -> None:
    """The frontend rejects such names already; the writer must not depend on it."""
    evil = ['a"b', "c'd", "e\nimport os", "../f/g", "h\\", 'i"""j', "k # l"]
    texts = [f"{i + 1}*x" for i in range(len(evil))]
    ls = LayerSet({name: Layer(name, text, parse(text)) for name, text in zip(evil, texts, strict=True)})
    out = write_package(ls, tmp_path / "kernels")
    files = snapshot(out)
    assert all(name.startswith("e_") or name == "manifest.json" for name in files)
    for name, data in files.items():
        if name.endswith(".py"):
            compile(data, name, "exec")  # still valid Python
            assert not any(n in data.decode() for n in evil)
    manifest = json.loads(files["manifest.json"])
    assert [e["name"] for e in manifest["layers"]] == evil


def test_expression_comments_stay_comments(tmp_path) -> None:
    """An expression may hold a Python comment; in a header it must not end the comment or a docstring."""
    text = '(x # """ ; import pwned\n + 1)'
    out = write_package(read_layers({"a": text}), tmp_path / "kernels")
    for name, data in snapshot(out).items():
        if name.endswith(".py"):
            code = compile(data, name, "exec")
            assert "pwned" not in code.co_names
