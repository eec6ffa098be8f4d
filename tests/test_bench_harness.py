"""The harness's line between a skipped row and a failed one, and where results go by default."""

from __future__ import annotations

import argparse

import pytest

from exprc.benchmarks.cases import Case, Skip
from exprc.benchmarks.cli import DEFAULT_RESULTS, results_dir
from exprc.benchmarks.config import BenchConfig
from exprc.benchmarks.harness import format_row, run_case

CPU_QUICK = BenchConfig("cpu", quick=True)


def raising(exc: Exception):
    def setup():
        raise exc

    return setup


@pytest.mark.parametrize("exc, skipped", [
    pytest.param(Skip("Liger's kernels are Triton GPU kernels: needs CUDA"), "needs CUDA", id="skip"),
    pytest.param(ModuleNotFoundError("No module named 'liger_kernel'", name="liger_kernel"),
                 "liger_kernel is not installed", id="optional-package"),
    pytest.param(ModuleNotFoundError("No module named 'matplotlib.pyplot'", name="matplotlib.pyplot"),
                 "pip install 'exprc[bench]'", id="optional-submodule"),
    pytest.param(ModuleNotFoundError("No module named 'timm'", name="timm"), "exprc[timm]", id="timm"),
])
def test_skipped_only_for_a_skip_or_a_missing_optional_package(exc, skipped):
    row = run_case(Case("kernels", "x", "1x1", "float32", raising(exc)), CPU_QUICK)
    assert row.ms is None and row.error is None and skipped in row.skipped
    assert "SKIP" in format_row(row)


@pytest.mark.parametrize("exc", [
    pytest.param(ModuleNotFoundError("No module named 'exprc.codegen.matmul_templates'",
                                     name="exprc.codegen.matmul_templates"), id="exprc-module-missing"),
    pytest.param(ModuleNotFoundError("No module named 'liger'", name="liger"), id="not-an-optional-package"),
    pytest.param(ImportError("cannot import name 'write_package'"), id="import-error-without-name"),
    pytest.param(RuntimeError("planted failure"), id="runtime-error"),
    pytest.param(KeyError("blocks.0.norm1"), id="key-error"),
])
def test_any_other_exception_is_an_error(exc):
    row = run_case(Case("kernels", "x", "1x1", "float32", raising(exc)), CPU_QUICK)
    assert row.ms is None and row.skipped is None
    assert row.error.startswith(f"{type(exc).__name__}: ") and "(at test_bench_harness.py:" in row.error
    assert row.traceback.startswith("Traceback") and "raise exc" in row.traceback
    assert f"ERROR {type(exc).__name__}" in format_row(row)
    assert "traceback" not in row.as_json() and row.as_json()["error"] == row.error


def test_a_failing_check_is_an_error():
    def check(out):
        raise ValueError("shape mismatch")

    row = run_case(Case("kernels", "x", "1x1", "float32", lambda: lambda: 1.0, check=check), CPU_QUICK)
    assert row.error.startswith("ValueError: shape mismatch")


@pytest.mark.parametrize("device, quick, given, default_dir", [
    pytest.param("cuda", False, None, True, id="gpu-run"),
    pytest.param("cuda", True, None, False, id="gpu-quick"),
    pytest.param("cpu", False, None, False, id="cpu-run"),
    pytest.param("cpu", True, None, False, id="cpu-quick"),
    pytest.param("cpu", True, "mine", None, id="given"),
])
def test_only_full_gpu_runs_write_to_bench_results_by_default(device, quick, given, default_dir, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    got = results_dir(argparse.Namespace(results_dir=given), BenchConfig(device, quick))
    if given:
        assert got == given
    elif default_dir:
        assert got == DEFAULT_RESULTS
    else:
        assert got.startswith(str(tmp_path / "exprc-bench-results-"))
