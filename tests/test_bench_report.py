"""Results processing: ratios, per-layer means, the schema check, and the README table generator."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from exprc.benchmarks.cases import MEAN_LAYER, Row, add_layer_means, add_ratios
from exprc.benchmarks.report import BEGIN, END, markdown, targets, update_readme
from exprc.benchmarks.results import default_path, make_document, schema_problems, write_document
from exprc.errors import ExprcError

H100 = {"device": "NVIDIA H100 80GB HBM3", "gpu": True, "host_cpu": "x86_64", "torch": "2.11.0",
        "triton": "3.6.0", "cuda": "12.8", "exprc": "0.1.0", "python": "3.12.0"}
CPU = {**H100, "device": "cpu", "gpu": False, "cuda": None, "torch": "2.14.1", "triton": "3.8.0"}


def kernel_row(impl: str, ms: float | None, layer: str | None = None, shape: str = "50432x768",
               dtype: str = "bfloat16") -> Row:
    row = Row("kernels", impl, shape, dtype, layer, ms=ms, skipped=None if ms else "needs CUDA")
    if ms:
        row.gbps = 1000.0 / ms
    return row


def test_ratios_and_layer_means():
    rows = [kernel_row("copy", 0.5), kernel_row("torch-layernorm", 1.0),
            kernel_row("paper-runtime", 4.0, "a"), kernel_row("paper-runtime", 8.0, "b"),
            kernel_row("exprc-precise", 0.5, "a"), kernel_row("exprc-precise", 0.6, "b"),
            kernel_row("liger-layernorm", None), kernel_row("copy", 0.25, shape="197x768")]
    means = add_layer_means(rows)
    add_ratios(rows, ("copy", "torch-layernorm"), ("paper-runtime",))
    by = {(r.impl, r.layer, r.shape): r for r in rows}
    assert {(m.impl, m.layer) for m in means} == {("paper-runtime", MEAN_LAYER), ("exprc-precise", MEAN_LAYER)}
    mean = by[("exprc-precise", MEAN_LAYER, "50432x768")]
    assert mean.ms == pytest.approx(0.55)
    assert mean.gbps == pytest.approx(1000.0 / 0.55)  # same work per call: the rate at the mean time
    assert mean.ratio_to == {"copy": pytest.approx(1.1), "torch-layernorm": pytest.approx(0.55),
                             "paper-runtime": pytest.approx(0.55 / 6.0, abs=1e-4)}
    assert by[("exprc-precise", "b", "50432x768")].ratio_to["paper-runtime"] == pytest.approx(0.075)
    assert by[("torch-layernorm", None, "50432x768")].ratio_to == {"copy": 2.0}  # not to itself
    assert by[("liger-layernorm", None, "50432x768")].ratio_to == {}
    assert by[("copy", None, "197x768")].ratio_to == {}  # no baseline measured on that shape


def test_schema_problems_flags_rows_without_time_or_reason():
    rows = [kernel_row("copy", 0.5), kernel_row("liger-layernorm", None)]
    doc = make_document(CPU, True, ("kernels",), rows, {})
    assert schema_problems(doc) == []
    doc["rows"][1]["skipped"] = ""
    doc["rows"][0].pop("gbps")
    problems = schema_problems(doc)
    assert any("no time, no reason and no error" in p for p in problems)
    assert any("no gbps" in p for p in problems)
    assert schema_problems({"rows": []})  # missing metadata


def test_failed_rows_stay_errors_in_means_results_and_table(tmp_path):
    boom = "RuntimeError: boom (at exprc_runtime.py:1)"
    rows = [kernel_row("copy", 0.5),
            Row("kernels", "exprc-precise", "50432x768", "bfloat16", "a", error=boom, traceback="Traceback ..."),
            Row("kernels", "exprc-precise", "50432x768", "bfloat16", "b", error=boom),
            kernel_row("liger-layernorm", None)]
    (mean,) = add_layer_means(rows)
    assert mean.ms is None and mean.skipped is None and mean.error == f"no layer measured: {boom}"
    doc = make_document(H100, False, ("kernels",), rows, {})
    assert schema_problems(doc) == []
    failed = doc["rows"][1]
    assert failed["ms"] is None and failed["error"] == boom
    assert "skipped" not in failed and "traceback" not in failed
    results = tmp_path / "results"
    write_document(doc, default_path(results, doc))
    table = markdown(results)
    assert "| exprc-precise (layer mean) | error |" in table and "| liger-layernorm | skip |" in table


def write_run(results, env, rows, when, quick=False, benches=("kernels",)):
    doc = make_document(env, quick, benches, rows, {}, when=datetime(*when, tzinfo=timezone.utc))
    return write_document(doc, default_path(results, doc))


README = "# exprc\n\nIntro.\n\n## Benchmarks\n\n" + BEGIN + "\nold table\n" + END + "\n\nAfter.\n"


def test_readme_table_from_newest_gpu_results(tmp_path):
    results = tmp_path / "results"
    old = write_run(results, H100, [kernel_row("copy", 0.5), kernel_row("exprc-precise", 0.9, "a"),
                                    kernel_row("exprc-precise", 0.7, "b"), kernel_row("compiled-dyt", 2.0)],
                    (2025, 1, 1, 10))
    # a later run of the same GPU with new numbers, one row skipped this time
    rows = [kernel_row("copy", 0.4), kernel_row("exprc-precise", 0.5, "a"), kernel_row("exprc-precise", 0.5, "b"),
            kernel_row("compiled-dyt", None)]
    add_layer_means(rows)
    new = write_run(results, H100, rows, (2025, 1, 2, 10))
    epi = Row("epilogue", "linear", "fc2 M6304 K3072 N768", "bfloat16", ms=0.2, tflops=150.0)
    fused = Row("epilogue", "exprc-fused-precise", "fc2 M6304 K3072 N768", "bfloat16", MEAN_LAYER, ms=0.206,
                tflops=145.6, ratio_to={"linear": 1.03})
    write_run(results, H100, [epi, fused], (2025, 1, 2, 11), benches=("epilogue",))
    # newer, but not GPU numbers or not a full run: ignored
    write_run(results, CPU, [kernel_row("copy", 99.0)], (2025, 1, 3), quick=True)
    write_run(results, H100, [kernel_row("copy", 77.0)], (2025, 1, 4), quick=True)
    (results / "broken.json").write_text("{not json")
    assert old.name == "2025-01-01_100000_nvidia-h100-80gb-hbm3.json" and new.exists()

    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert update_readme(readme, results) is True
    text = readme.read_text()
    assert text.startswith("# exprc\n\nIntro.\n\n## Benchmarks\n\n" + BEGIN + "\n")
    assert text.endswith("\n" + END + "\n\nAfter.\n")
    table = text[text.index(BEGIN):text.index(END)]
    assert "old table" not in table
    assert "NVIDIA H100 80GB HBM3" in table and "Triton 3.6.0" in table
    assert "| copy | 2500 |" in table  # 1000/0.4 from the newest run, not the CPU or quick ones
    assert "| exprc-precise (layer mean) | 2000 |" in table
    assert "| compiled-dyt | 500 |" in table  # a newer skip does not hide an older measurement
    assert "| exprc-fused-precise (layer mean) | 0.206 (1.03x) |" in table
    assert "| linear | 0.200 |" in table
    assert "99" not in table and "77" not in table
    assert update_readme(readme, results) is False  # idempotent


def test_readme_without_gpu_results(tmp_path):
    write_run(tmp_path, CPU, [kernel_row("copy", 1.0)], (2025, 1, 1), quick=True)
    assert "No GPU results yet" in markdown(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(README)
    update_readme(readme, tmp_path)
    assert "No GPU results yet" in readme.read_text()


def test_readme_without_markers_is_an_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# exprc\n")
    with pytest.raises(ExprcError, match="markers"):
        update_readme(readme, tmp_path)
    assert readme.read_text() == "# exprc\n"
    with pytest.raises(ExprcError, match="cannot read"):
        update_readme(tmp_path / "missing.md", tmp_path)


def test_results_file_is_named_by_date_and_device(tmp_path):
    path = write_run(tmp_path, CPU, [kernel_row("copy", 1.0)], (2025, 3, 4, 5, 6, 7), quick=True)
    assert path.name == "2025-03-04_050607_cpu_quick.json"
    doc = json.loads(path.read_text())
    assert doc["device"] == "cpu" and doc["quick"] is True and "NOT GPU" in doc["note"]


def test_targets_report_the_worst_case_per_implementation():
    def mean_row(bench, impl, shape, dtype, dims, ratios):
        return {"bench": bench, "impl": impl, "shape": shape, "dtype": dtype, "layer": MEAN_LAYER, "ms": 1.0,
                "ratio_to": ratios, "dims": dims}

    rows = [
        mean_row("kernels", "exprc-fast", "50432x768", "bfloat16", {"tokens": 50432, "d": 768}, {"copy": 1.02}),
        mean_row("kernels", "exprc-fast", "16384x4096", "float32", {"tokens": 16384, "d": 4096}, {"copy": 1.04}),
        mean_row("kernels", "exprc-fast", "197x768", "float32", {"tokens": 197, "d": 768}, {"copy": 3.0}),  # small
        mean_row("kernels", "exprc-horner", "6304x768", "bfloat16", {"tokens": 6304, "d": 768}, {"copy": 2.0}),
        mean_row("epilogue", "exprc-fused-precise", "fc2", "bfloat16", {}, {"linear": 1.05}),
        mean_row("epilogue", "exprc-fused-precise", "proj", "bfloat16", {}, {"linear": 1.01}),
    ]
    lines = targets(rows)
    assert len(lines) == 2  # exprc-horner has no >= 64 MB row
    assert "`exprc-fast` worst 96% (16384x4096 f32" in lines[0] and lines[0].endswith(": met")
    assert "`exprc-fused-precise` worst 1.05x (fc2 bf16): NOT met" in lines[1]


def test_on_a_copy_of_the_repository_readme(tmp_path):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    copy = tmp_path / "README.md"
    copy.write_text(text)
    rows = [kernel_row("copy", 0.4), kernel_row("torch-layernorm", 0.8)]
    add_ratios(rows, ("copy",))
    write_run(tmp_path / "results", H100, rows, (2025, 1, 2))
    update_readme(copy, tmp_path / "results")
    new = copy.read_text()
    assert new[:new.index(BEGIN)] == text[:text.index(BEGIN)]
    assert new[new.index(END):] == text[text.index(END):]
    assert "| torch-layernorm | 1250 (50%) |" in new
