"""The benchmark harness end to end: the CPU smoke run (`exprc bench --quick`) into a temporary directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from exprc.benchmarks.paper_layers import QUICK_LAYERS
from exprc.benchmarks.results import schema_problems
from exprc.cli import main

REPO = Path(__file__).resolve().parents[1]
NEVER_SKIPPED = {  # plain torch: these rows run on any machine
    "kernels": {"copy", "torch-layernorm", "dyt-eager", "paper-runtime"},
    "epilogue": {"linear", "linear+add+layernorm", "linear+add+dyt", "linear+add+paper-runtime"},
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[dict, str, Path]:
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    capture = tmp_path_factory.mktemp("log") / "stdout.txt"
    saved = sys.stdout
    with open(capture, "w") as log:
        sys.stdout = log
        try:
            rc = main(["bench", "--quick", "--device", "cpu", "--out", str(out)])
        finally:
            sys.stdout = saved
    assert rc == 0
    return json.loads(out.read_text()), capture.read_text(), out


def test_document_is_well_formed_and_says_cpu(smoke):
    doc, stdout, _ = smoke
    assert schema_problems(doc) == []
    assert doc["device"] == "cpu" and doc["gpu"] is False and doc["quick"] is True
    assert "NOT GPU numbers" in doc["note"] and "NOT GPU numbers" in stdout
    assert doc["torch"] == torch.__version__ and doc["benches"] == ["kernels", "epilogue", "vit"]
    assert doc["complete"] is True


def test_every_bench_has_rows_and_skips_say_why(smoke):
    doc, _, _ = smoke
    benches = {r["bench"] for r in doc["rows"]}
    assert benches == {"kernels", "epilogue", "vit"}
    for row in doc["rows"]:
        if row["ms"] is None:
            assert isinstance(row.get("skipped"), str) and len(row["skipped"]) > 5, row
        else:
            assert row["ms"] > 0 and row["timer"] == "perf_counter"
    reasons = {r["impl"]: r.get("skipped") for r in doc["rows"]}
    assert "CUDA" in reasons["liger-layernorm"] and "CUDA" in reasons["liger-dyt"]
    assert "--quick" in reasons["compiled-layernorm"]


def test_plain_torch_rows_are_measured(smoke):
    doc, _, _ = smoke
    for bench, impls in NEVER_SKIPPED.items():
        for impl in impls:
            rows = [r for r in doc["rows"] if r["bench"] == bench and r["impl"] == impl]
            assert rows and all(r["ms"] for r in rows), (bench, impl, rows)
    per_layer = {r["layer"] for r in doc["rows"] if r["impl"] == "paper-runtime"}
    assert per_layer == {*QUICK_LAYERS, "mean"}


def test_metrics_and_ratios(smoke):
    doc, _, _ = smoke
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


def test_exprc_rows_agree_with_reference_when_they_run(smoke):
    doc, _, _ = smoke
    exprc_rows = [r for r in doc["rows"] if r["bench"] == "kernels" and r["impl"].startswith("exprc-")]
    assert exprc_rows
    for r in exprc_rows:
        if r["ms"] is not None and r["dtype"] == "float32":
            assert r["max_err"] < 1e-4, r


def test_plots_are_written(smoke):
    pytest.importorskip("matplotlib")
    _, stdout, out = smoke
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
