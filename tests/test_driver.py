"""The shape the redesign promised, held by tests: one driver, kernels written once, generated files that hold
only the expression, and what a new user ran into (issue 8) staying fixed."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import exprc
from exprc.cli import main
from exprc.compiler import compile_expr, compile_layers, write_package
from exprc.frontend.layer_files import read_layers

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "examples" / "vit_b16_paper.json"
EMITTERS = ("exprc.codegen.emit_triton", "exprc.codegen.emit_torch", "exprc.codegen.expr_module")


def pipeline_and_emitters(names: set[str]) -> bool:
    """Whether `names` include a pass (exprc.passes...) and an emitter."""
    return any(n.startswith("exprc.passes") for n in names) and any(n.startswith(EMITTERS) for n in names)


def imported_modules(path: Path) -> set[str]:
    """The exprc modules a source file imports (relative imports resolved), at any depth of its code."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0] + ".__init__"
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: -node.level]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return {n for n in names if n.startswith("exprc")}


def test_only_the_driver_imports_both_the_pipeline_and_the_emitters() -> None:
    both = []
    for path in sorted((ROOT / "exprc").rglob("*.py")):
        names = imported_modules(path)
        if pipeline_and_emitters(names):
            both.append(str(path.relative_to(ROOT)))
    assert both == ["exprc/compiler.py"]


def test_the_import_scan_sees_a_second_driver(tmp_path) -> None:
    """The check above must be able to fail: a module importing both is found."""
    fake = ROOT / "exprc" / "commands" / "_fake_driver_for_test.py"
    fake.write_text("from ..passes.pipeline import optimize\nfrom ..codegen.emit_triton import emit_expr_function\n")
    try:
        names = imported_modules(fake)
        assert pipeline_and_emitters(names)
    finally:
        fake.unlink()


def test_committed_kernels_hold_only_expressions() -> None:
    files = sorted((ROOT / "kernels").iterdir())
    lines = sum(len(f.read_text().splitlines()) for f in files)
    assert lines < 1500, f"kernels/ has {lines} lines"
    for f in files:
        if f.suffix == ".py":
            text = f.read_text()
            for kernel_code in ("tl.load", "tl.store", "tl.dot", "_ptr"):
                assert kernel_code not in text, f"{f.name} holds kernel code ({kernel_code})"
            tree = ast.parse(text)
            functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
            # auto mode: a 16-bit storage dtype with a lowering of its own has its forward function after f'
            assert functions in (["expr_fn", "expr_grad_fn", "expr_torch", "expr_grad_torch"],
                                 ["expr_fn", "expr_grad_fn", "expr_fn_bf16", "expr_torch", "expr_grad_torch"]), f.name


def test_ruff_is_clean_on_the_whole_repository() -> None:
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]


def test_check_counts_the_kernels_compile_writes(tmp_path, capsys) -> None:
    """`exprc check` reported 24 distinct kernels where `compile` wrote 25 (it counted ids of freed nodes)."""
    assert main(["check", str(PAPER)]) == 0
    said = capsys.readouterr().out
    out = write_package(read_layers(PAPER), tmp_path / "k")
    written = len([p for p in out.iterdir() if p.suffix == ".py"])
    assert written == 25 and f"{written} distinct kernels" in said


def test_explain_shows_the_cost_of_the_code_of_its_mode(capsys) -> None:
    """precise mode calls tanh twice (2 x 23 + 2 adds); horner computes one shared exp and two software
    reciprocals, all plain arithmetic (58 FLOPs: the reciprocals' Newton steps cost more than the paper's 23 per
    tanh assume)."""
    layers = {"a": "tanh(x) + tanh(x + 0.27)"}
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"explain-{os.getpid()}.json"
    path.write_text(json.dumps(layers))
    try:
        shown = {}
        for mode in ("precise", "horner"):
            assert main(["explain", str(path), "--mode", mode, "--no-code"]) == 0
            shown[mode] = capsys.readouterr().out
    finally:
        path.unlink()
    assert "48 in the precise code" in shown["precise"]
    horner = compile_expr("tanh(x) + tanh(x + 0.27)", "horner").cost["flops_code"]
    assert horner != 48 and f"{horner} in the horner code" in shown["horner"]


def test_explain_trace_says_when_no_rule_fired(tmp_path, capsys) -> None:
    path = tmp_path / "l.json"
    path.write_text(json.dumps({"a": "tanh(x)", "b": "x*1 + 0"}))
    assert main(["explain", str(path), "--trace", "--no-code"]) == 0
    text = capsys.readouterr().out
    a, b = text.split("=== layer b")
    assert "(no rule fired)" in a and "fired:" not in a  # tanh(x): nothing to rewrite in any pass
    assert "fired: 1*a -> a" in b or "fired: a*1" in b or "fired:" in b


def test_compile_output_respects_the_umask(tmp_path) -> None:
    old = os.umask(0o027)
    try:
        out = write_package(read_layers({"a": "tanh(x)"}), tmp_path / "k")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o750
    assert all(p.stat().st_mode & 0o777 == 0o640 for p in out.iterdir())


def test_float64_is_computed_in_float64_and_gradcheck_passes() -> None:
    norm = exprc.ExprNorm(6, "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)", backend="torch",
                          dtype=torch.float64)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = (torch.randn(4, 6, dtype=torch.float64) * 3).requires_grad_()
    y = norm(x)
    assert y.dtype == torch.float64
    exact = (-0.84 * x + 1.31 * torch.clamp(2 * x, -5, 5)
             + 0.548 * torch.tanh(torch.tanh(torch.tanh(x)) + 0.227)) * norm.weight + norm.bias
    torch.testing.assert_close(y, exact, rtol=1e-12, atol=1e-12)  # f32 would be ~1e-7 off
    assert torch.autograd.gradcheck(norm, (x,))


def test_plan_and_cost_are_in_the_manifest(tmp_path) -> None:
    artifact = compile_layers(read_layers(PAPER))
    manifest = json.loads((write_package(artifact, tmp_path / "k") / "manifest.json").read_text())
    assert manifest["context"] == {"dim": 768, "mlp_hidden": 3072, "storage_bytes": 2}
    for entry, la in zip(manifest["layers"], artifact.layers, strict=True):
        assert (entry["placement"], entry["reason"]) == (la.plan.kind, la.plan.reason)
    kinds = {e["name"]: e["placement"] for e in manifest["layers"]}
    assert kinds["blocks.0.norm1"] in ("prologue", "standalone")  # nothing produces block 0's input
    assert kinds["norm"] == "epilogue"  # no Linear consumes it
    assert kinds["blocks.2.norm1"] == "epilogue"  # three tanh: too dear to recompute per N-tile


@pytest.mark.parametrize("argv", [["compile", str(PAPER), "-o", "{tmp}/k", "--d", "0"],
                                  ["explain", str(PAPER), "--mlp-hidden", "-3"]])
def test_bad_model_widths_are_user_errors(argv, tmp_path, capsys) -> None:
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert "must be a positive integer" in capsys.readouterr().err


def test_each_mode_is_described_once_and_quoted_as_is(capsys) -> None:
    """The modes' errors were stated three different ways (help, README, a docstring): now one statement,
    `MODE_DESCRIPTIONS`, which `--help` and the README quote verbatim."""
    from exprc.passes.lower_transcendentals import MODE_DESCRIPTIONS

    readme = (ROOT / "README.md").read_text()
    with pytest.raises(SystemExit):
        main(["compile", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for mode, text in MODE_DESCRIPTIONS.items():
        assert f"- `{mode}`: {text}\n" in readme
        assert f"{mode}: {text}" in help_text
    stray = [line for line in readme.splitlines() if "2^-11" in line and "PTX ISA" not in line]
    assert stray == []


def test_the_trust_model_of_kernel_directories_is_documented() -> None:
    """`exprc.load` imports generated Python: the README and its docstring say that a directory is code."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "**Trust:** a kernels directory is code." in readme
    doc = " ".join((exprc.load.__doc__ or "").split())
    assert "The directory is code" in doc and "trust model" in doc


def test_explain_shows_the_derivative(capsys) -> None:
    assert main(["explain", str(PAPER), "--layer", "blocks.8.norm1", "--no-code"]) == 0
    text = capsys.readouterr().out
    grad = compile_expr("tanh(x) + tanh(x + 0.27)").grad
    from exprc.ir import print_ir

    assert "--- derivative f'" in text and print_ir(grad.root) in text
