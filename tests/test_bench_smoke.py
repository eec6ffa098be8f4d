"""The benchmark harness end to end: the CPU smoke run (`exprc bench --quick`) into a temporary directory, a
failure planted in exprc (an error row and a non-zero exit, not a skip), and where a smoke run writes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

import exprc
from exprc.benchmarks.paper_layers import QUICK_LAYERS
from exprc.benchmarks.results import schema_problems
from exprc.cli import main
from exprc import compiler

REPO = Path(__file__).resolve().parents[1]
NEVER_SKIPPED = {  # plain torch: these rows run on any machine
    "kernels": {"copy", "torch-layernorm", "dyt-eager", "paper-runtime"},
    "epilogue": {"linear", "linear+add+layernorm", "linear+add+dyt", "linear+add+paper-runtime"},
}
EXPRC_ROWS = {  # exprc's own rows of --quick (precise mode): they must have run, on any machine
    "kernels": {"exprc-precise"},
    "epilogue": {"linear+add+exprc-precise", "exprc-fused-precise"},
}
EXIT_ROWS_FAILED = 1


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[dict, str, Path, int]:
    """(results document, stdout, results path, exit status) of one `exprc bench --quick --device cpu`."""
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    capture = tmp_path_factory.mktemp("log") / "stdout.txt"
    saved = sys.stdout
    with open(capture, "w") as log:
        sys.stdout = log
        try:
            rc = main(["bench", "--quick", "--device", "cpu", "--out", str(out)])
        finally:
            sys.stdout = saved
    return json.loads(out.read_text()), capture.read_text(), out, rc


def test_no_row_failed_and_the_run_exits_0(smoke):
    doc, stdout, _, rc = smoke
    errors = [(r["bench"], r["impl"], r.get("layer"), r["error"]) for r in doc["rows"] if "error" in r]
    assert errors == [] and rc == 0, stdout


def test_exprc_rows_ran(smoke):
    """exprc's element-wise, unfused-epilogue and fused-epilogue rows were measured, per layer and as a mean, and
    agree with the float64 reference: not skipped, not failed."""
    doc, stdout, _, _ = smoke
    for bench, impls in EXPRC_ROWS.items():
        for impl in impls:
            rows = [r for r in doc["rows"] if r["bench"] == bench and r["impl"] == impl]
            assert rows, (bench, impl, stdout)
            for r in rows:
                assert r["ms"] is not None and r["ms"] > 0 and r["timer"] == "perf_counter", r
                assert "skipped" not in r and "error" not in r, r
                assert r["max_err"] < (1e-4 if r["dtype"] == "float32" else 0.05), r
    assert {r["layer"] for r in doc["rows"] if r["impl"] == "exprc-precise" and r["bench"] == "kernels"} == {
        *QUICK_LAYERS, "mean"}
    assert {r["layer"] for r in doc["rows"] if r["impl"] == "exprc-fused-precise" and r["bench"] == "epilogue"} == {
        QUICK_LAYERS[-1], "mean"}


def test_exprc_train_rows_ran(smoke):
    """`exprc bench train --quick` (part of the smoke run): exprc's backward (per norm, checked against float64
    autograd), the fused block and the fused ViT training step were measured, beside the eager-autograd path."""
    doc, stdout, _, _ = smoke
    rows = [r for r in doc["rows"] if r["bench"] == "train"]
    for impl in ("exprc-precise", "exprc-eager-autograd", "paper-runtime"):
        measured = [r for r in rows if r["impl"] == impl]
        assert {r["layer"] for r in measured} == {*QUICK_LAYERS, "mean"}, impl
        assert all(r["ms"] > 0 and r["max_err"] < 1e-4 for r in measured), measured
    fused = [r for r in rows if r["impl"] == "exprc-fused-precise"]
    assert fused and all(r["ms"] > 0 and "error" not in r for r in fused)
    if __import__("importlib").util.find_spec("timm"):
        step = [r for r in rows if r["impl"] == "exprc-precise-fused"]
        assert len(step) == 1 and step[0]["images_per_s"] > 0
    assert "NOT GPU numbers" in stdout


def test_exprc_vit_rows_ran(smoke):
    pytest.importorskip("timm")  # an optional dependency: without it, the vit rows are skipped
    doc, _, _, _ = smoke
    rows = [r for r in doc["rows"] if r["bench"] == "vit" and r["impl"] in ("exprc-precise", "exprc-precise-fused")]
    assert len(rows) == 2 and all(r["ms"] and r["ms"] > 0 for r in rows), rows


def test_document_is_well_formed_and_says_cpu(smoke):
    doc, stdout, _, _ = smoke
    assert schema_problems(doc) == []
    assert doc["device"] == "cpu" and doc["gpu"] is False and doc["quick"] is True
    assert "NOT GPU numbers" in doc["note"] and "NOT GPU numbers" in stdout
    assert doc["torch"] == torch.__version__ and doc["benches"] == ["kernels", "epilogue", "vit", "train"]
    assert doc["complete"] is True


def test_every_bench_has_rows_and_skips_say_why(smoke):
    doc, _, _, _ = smoke
    benches = {r["bench"] for r in doc["rows"]}
    assert benches == {"kernels", "epilogue", "vit", "train"}
    for row in doc["rows"]:
        if row["ms"] is None:
            assert isinstance(row.get("skipped"), str) and len(row["skipped"]) > 5, row
        else:
            assert row["ms"] > 0 and row["timer"] == "perf_counter"
    reasons = {r["impl"]: r.get("skipped") for r in doc["rows"]}
    assert "CUDA" in reasons["liger-layernorm"] and "CUDA" in reasons["liger-dyt"]
    assert "--quick" in reasons["compiled-layernorm"]


def test_plain_torch_rows_are_measured(smoke):
    doc, _, _, _ = smoke
    for bench, impls in NEVER_SKIPPED.items():
        for impl in impls:
            rows = [r for r in doc["rows"] if r["bench"] == bench and r["impl"] == impl]
            assert rows and all(r["ms"] for r in rows), (bench, impl, rows)
    per_layer = {r["layer"] for r in doc["rows"] if r["impl"] == "paper-runtime"}
    assert per_layer == {*QUICK_LAYERS, "mean"}


def test_metrics_and_ratios(smoke):
    doc, _, _, _ = smoke
    rows = {(r["bench"], r["impl"], r["layer"], r["dtype"]): r for r in doc["rows"]}
    copy = rows[("kernels", "copy", None, "float32")]
    assert copy["gbps"] == pytest.approx(2 * 197 * 768 * 4 / (copy["ms"] * 1e-3) / 1e9, rel=1e-6)
    ln = rows[("kernels", "torch-layernorm", None, "float32")]
    assert ln["ratio_to"]["copy"] == pytest.approx(ln["ms"] / copy["ms"], rel=1e-3)
    paper = rows[("kernels", "paper-runtime", QUICK_LAYERS[-1], "float32")]
    assert "torch-layernorm" in paper["ratio_to"]
    assert paper["max_err"] < 1e-5  # f32 eager ops against the float64 reference
    assert rows[("kernels", "paper-runtime", QUICK_LAYERS[-1], "bfloat16")]["max_err"] < 0.1
    lin = rows[("epilogue", "linear", None, "bfloat16")]
    assert lin["tflops"] == pytest.approx(2 * 64 * 256 * 128 / (lin["ms"] * 1e-3) / 1e12, rel=1e-6)
    vit = [r for r in doc["rows"] if r["bench"] == "vit" and r["ms"]]
    for r in vit:
        assert r["images_per_s"] == pytest.approx(r["dims"]["batch"] / (r["ms"] * 1e-3), rel=1e-6)


def test_plots_are_written(smoke):
    pytest.importorskip("matplotlib")
    _, stdout, out, _ = smoke
    for bench in ("kernels", "epilogue", "vit"):
        png = out.with_name(f"{out.stem}_{bench}.png")
        assert png.exists() and png.read_bytes()[:4] == b"\x89PNG", stdout


def test_python_m_bench_with_filter(tmp_path):
    out = tmp_path / "r.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "bench", "kernels", "--quick", "--device", "cpu", "--no-plots",
                           "--only", r"^kernels/(copy|torch-layernorm)/", "--dtypes", "float32", "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert [(r["impl"], r["dtype"]) for r in doc["rows"]] == [("copy", "float32"), ("torch-layernorm", "float32")]
    assert all(r["ms"] > 0 for r in doc["rows"])
    assert "NOT GPU numbers" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--modes", "turbo"], "unknown mode"),
    (["--dtypes", "float64"], "unknown dtype"),
    (["--batches", "one"], "expected integers"),
    (["--only", "("], "bad regular expression"),
])
def test_bad_arguments(args, message, capsys):
    assert main(["bench", "--quick", "--device", "cpu", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_requested_without_cuda(capsys):
    assert main(["bench", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_quick_run_on_gpu(tmp_path):
    out = tmp_path / "gpu.json"
    assert main(["bench", "kernels", "--quick", "--device", "cuda", "--no-plots", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert schema_problems(doc) == [] and doc["gpu"] is True and doc["device"] != "cpu"
    timed = [r for r in doc["rows"] if r["ms"]]
    assert timed and all(r["timer"].startswith("do_bench") for r in timed)


def test_budget_records_the_cases_it_did_not_run(tmp_path):
    out = tmp_path / "budget.json"
    assert main(["bench", "kernels", "--quick", "--device", "cpu", "--no-plots", "--budget", "0.001",
                 "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert schema_problems(doc) == [] and doc["rows"]
    assert all(r["ms"] is None and "--budget" in r["skipped"] for r in doc["rows"] if r["layer"] != "mean")


def _planted_failure(*args, **kwargs):
    raise RuntimeError("planted failure")


@pytest.mark.parametrize("plant", ["compile", "forward"])
def test_a_failing_exprc_row_is_an_error_and_the_run_exits_non_zero(plant, tmp_path, monkeypatch, capsys):
    if plant == "compile":  # the compile step the exprc rows go through
        monkeypatch.setattr(compiler, "write_package", _planted_failure)
    else:  # the compiled norm itself
        monkeypatch.setattr(exprc.ExprNorm, "forward", _planted_failure)
    out = tmp_path / "r.json"
    rc = main(["bench", "kernels", "--quick", "--device", "cpu", "--no-plots", "--dtypes", "float32",
               "--only", r"^kernels/(copy|exprc-precise)/", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == EXIT_ROWS_FAILED
    doc = json.loads(out.read_text())  # the results are written all the same
    assert schema_problems(doc) == [] and doc["complete"] is True
    copy = [r for r in doc["rows"] if r["impl"] == "copy"]
    assert len(copy) == 1 and copy[0]["ms"] > 0  # the other rows still ran
    failed = [r for r in doc["rows"] if r["impl"] == "exprc-precise"]
    assert {r["layer"] for r in failed} == {*QUICK_LAYERS, "mean"}
    for r in failed:
        assert r["ms"] is None and "skipped" not in r and "RuntimeError: planted failure" in r["error"], r
    assert "ERROR RuntimeError: planted failure" in captured.out
    assert "1 rows measured, 0 skipped, 3 failed" in captured.out
    assert "3 row(s) failed" in captured.err and "Traceback" in captured.err
    assert "raise RuntimeError(\"planted failure\")" in captured.err  # the traceback reaches the planted line


PLANTED_RUN = """
import runpy

from exprc import compiler


def planted_failure(*args, **kwargs):
    raise RuntimeError("planted failure")


compiler.write_package = planted_failure
runpy.run_module("bench", run_name="__main__", alter_sys=True)
"""


def test_python_m_bench_exits_non_zero_on_a_failed_row(tmp_path):
    out = tmp_path / "r.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", PLANTED_RUN, "kernels", "--quick", "--device", "cpu", "--no-plots",
                           "--only", r"^kernels/(copy|exprc-precise)/", "--dtypes", "float32", "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == EXIT_ROWS_FAILED, proc.stdout + proc.stderr
    assert "planted failure" in proc.stderr
    doc = json.loads(out.read_text())
    assert [r["impl"] for r in doc["rows"] if r["ms"]] == ["copy"]


def test_a_missing_optional_package_is_a_skip(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` now raises ModuleNotFoundError
    out = tmp_path / "r.json"
    assert main(["bench", "vit", "--quick", "--device", "cpu", "--no-plots",
                 "--only", r"^vit/(timm-layernorm|exprc-precise)/", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["impl"] for r in rows] == ["timm-layernorm", "exprc-precise"]
    for r in rows:
        assert r["ms"] is None and "error" not in r and "timm is not installed" in r["skipped"], r


def test_a_smoke_run_leaves_the_results_directory_alone(tmp_path, monkeypatch, capsys):
    """Without --out or --results-dir, a --quick run writes into a new temporary directory, which it prints, and
    not into ./bench/results (the repository's, when run from a checkout)."""
    checkout = tmp_path / "checkout"
    (checkout / "bench" / "results").mkdir(parents=True)
    monkeypatch.chdir(checkout)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the run's temporary directory goes
    assert main(["bench", "kernels", "--quick", "--device", "cpu", "--dtypes", "float32",
                 "--only", r"^kernels/copy/"]) == 0
    stdout = capsys.readouterr().out
    assert [p for p in checkout.rglob("*") if p.is_file()] == []
    written = Path(re.search(r"^results: (\S+)", stdout, re.MULTILINE).group(1))
    assert written.is_file() and written.parent.parent == tmp_path, stdout
    assert written.parent.name.startswith("exprc-bench-results-") and f"results go to {written.parent}" in stdout
