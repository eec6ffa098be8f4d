"""`exprc bench static`: the SASS reading, the budgets, CI's subset compiled with the installed Triton (no spills,
no failures, the baselines beside exprc's kernels), the README block and the re-run under another Python."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from exprc.benchmarks import static, static_report
from exprc.benchmarks.static_cases import code_for
from exprc.codegen.sass import parse_sass, profile

ROOT = Path(__file__).resolve().parents[1]

SASS = """
        Function : kernel
        /*0000*/                   LDC R1, c[0x0][0x28] ;                 /* 0x00000a00ff017b82 */
        /*0010*/                   NOP ;
        /*0020*/              @!P0 BRA 0x50 ;
        /*0030*/                   CALL.REL.NOINC 0xa0 ;
        /*0040*/                   MUFU.RCP R0, R0 ;
        /*0050*/                   FFMA R2, R3, R4, R5 ;
        /*0060*/                   MUFU.EX2 R2, R2 ;
        /*0070*/               @P1 BRA 0x50 ;
        /*0080*/                   STG.E desc[UR4][R2.64], R3 ;
        /*0090*/                   EXIT ;
        /*00a0*/                   IMAD R0, R1, R2, RZ ;
        /*00b0*/                   RET.REL.NODEC R2 0x0 ;
        /*00c0*/                   BRA 0xc0;
"""


def test_sass_profile_counts_main_path_loop_and_slow_paths() -> None:
    p = profile(parse_sass(SASS))
    assert p.main == 9  # NOP, the called subroutine and the closing self-branch left out
    assert (p.mufu, p.mufu_ops) == (2, {"EX2": 1, "RCP": 1})
    assert (p.calls, p.cold) == (1, 2)
    assert (p.before_loop, p.loop_body, p.after_loop) == (4, 3, 2)
    assert p.loop_mufu == (1, 1, 0)
    assert p.opcodes["BRA"] == 2


def test_sass_profile_without_loop_or_calls() -> None:
    text = "\n".join(line for line in SASS.splitlines() if "@P1 BRA" not in line and "CALL" not in line)
    p = profile(parse_sass(text))
    assert (p.main, p.calls, p.cold, p.has_loop) == (9, 0, 0, False)  # no CALL: the subroutine counts as code


def test_budgets_are_the_issues() -> None:
    b = static_report.budgets(90)
    assert b["H100"]["bfloat16"] == pytest.approx({"instructions": 40, "mufu": 5}, abs=0.15)
    assert b["H200"]["bfloat16"] == pytest.approx({"instructions": 28, "mufu": 3.5}, abs=0.15)
    assert b["H100"]["float32"]["instructions"] == pytest.approx(2 * b["H100"]["bfloat16"]["instructions"], abs=0.2)


@pytest.fixture(scope="module")
def subset_doc(tmp_path_factory) -> dict:
    """CI's subset compiled with the installed Triton (about 40 s on two cores)."""
    pytest.importorskip("triton")
    out = tmp_path_factory.mktemp("static")
    assert static.main(["--subset", "--results-dir", str(out), "--readme", ""]) == 0
    return json.loads((out / "static-sm90.json").read_text())


def test_subset_compiles_without_spills_or_failures(subset_doc) -> None:
    import triton

    run = subset_doc["runs"][triton.__version__]
    kinds = {k["kind"] for k in run["kernels"]}
    assert kinds == {"elementwise", "epilogue", "copy", "liger-layernorm", "liger-dyt"}
    assert run["summary"]["spilled"] == run["summary"]["failed"] == 0
    for k in run["kernels"]:
        assert k["spills"] == 0 and k["registers"] <= 255, k
        assert k["per_element"]["instructions"] > 0
    # the same expression compiles to one kernel whatever the mode: clip-only code is mode-independent
    clip = run["layers"]["blocks.0.norm2"]
    assert set(clip) == {"auto", "precise", "fast", "horner"} and len({codes["f"] for codes in clip.values()}) == 1


def _kernel(run: dict, kind: str, storage: str, code: str | None = None) -> dict:
    return next(k for k in run["kernels"] if k["kind"] == kind and k["storage"] == storage
                and (code is None or k["code"] == code))


def test_subset_figures_against_copy_and_liger(subset_doc) -> None:
    import triton

    run = subset_doc["runs"][triton.__version__]
    for storage in ("bfloat16", "float32"):
        copy = _kernel(run, "copy", storage)["per_element"]
        assert copy["mufu"] == 0 and copy["instructions"] < 4
        dyt = _kernel(run, "liger-dyt", storage)["per_element"]
        assert dyt["mufu"] > 2  # tanh = exp + reciprocal on the MUFU
        deep = run["layers"]["blocks.2.norm1"]
        fast = _kernel(run, "elementwise", storage, deep["fast"]["f"])["per_element"]
        precise = _kernel(run, "elementwise", storage, deep["precise"]["f"])["per_element"]
        assert fast["instructions"] < precise["instructions"]  # tanh.approx against libdevice's tanh
        for layer in ("blocks.2.norm1", "blocks.11.norm2"):  # tanh, sigmoid: horner needs no MUFU
            horner = _kernel(run, "elementwise", storage, run["layers"][layer]["horner"]["f"])
            assert horner["mufu"] == horner["calls"] == 0
        # auto: fast's kernel where fast is proven for bf16 (within the H100 budget), precise's otherwise
        auto = {layer: code_for(run["layers"][layer]["auto"], "f", storage) for layer in run["layers"]}
        assert auto["blocks.2.norm1"] == deep["fast" if storage == "bfloat16" else "precise"]["f"]
        assert auto["blocks.11.norm2"] == run["layers"]["blocks.11.norm2"]["precise"]["f"]
        if storage == "bfloat16":
            assert _kernel(run, "elementwise", storage, auto["blocks.2.norm1"])["per_element"]["instructions"] < 40


def test_report_reads_the_document(subset_doc, tmp_path) -> None:
    (tmp_path / "static-sm90.json").write_text(json.dumps(subset_doc))
    text = static_report.markdown(tmp_path)
    assert "H100 40 instructions / 5.0 MUFU, H200 28 / 3.5" in text
    assert "| blocks.2.norm1 |" in text and "plain Triton copy" in text
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- bench:begin -->\nkept\n<!-- bench:end -->\n"
                      "<!-- static:begin -->\nold\n<!-- static:end -->\n")
    assert static_report.update_readme(readme, tmp_path)
    new = readme.read_text()
    assert "<!-- bench:begin -->\nkept\n<!-- bench:end -->" in new and "old" not in new and text in new
    assert not static_report.update_readme(readme, tmp_path)


def test_readme_block_is_in_sync_with_committed_results() -> None:
    text = (ROOT / "README.md").read_text()
    block = text[text.index(static_report.BEGIN) + len(static_report.BEGIN):text.index(static_report.END)]
    assert block.strip() == static_report.markdown(ROOT / "bench" / "results").strip()


def test_python_option_reruns_under_another_interpreter(tmp_path, monkeypatch) -> None:
    """`exprc bench static --python PY` runs PY -m exprc.benchmarks.static with this checkout on PYTHONPATH."""
    fake = tmp_path / "python"
    record = tmp_path / "record.json"
    fake.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    f"json.dump([sys.argv[1:], os.environ.get('PYTHONPATH', '')], open({str(record)!r}, 'w'))\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    from exprc.cli import main

    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert main(["bench", "static", "--python", str(fake), "--subset", "--arch", "90", "--dtypes", "bfloat16"]) == 0
    argv, path = json.loads(record.read_text())
    assert argv[:2] == ["-m", "exprc.benchmarks.static"]
    assert "--subset" in argv and argv[argv.index("--dtypes") + 1] == "bfloat16"
    assert argv[argv.index("--arch") + 1] == "90" and "--modes" not in argv
    assert path.split(os.pathsep)[0] == str(ROOT)


def _other_triton() -> str | None:
    """A Python with another Triton (3.6, the GPU machines') for the subset: $EXPRC_TRITON_PYTHON, else the
    checkout's .tri36/ environment (`python3 -m venv .tri36 && .tri36/bin/pip install triton==3.6.0 numpy`)."""
    path = os.environ.get("EXPRC_TRITON_PYTHON") or str(ROOT / ".tri36" / "bin" / "python")
    return path if os.path.exists(path) else None


@pytest.mark.skipif(_other_triton() is None, reason="no second Triton environment ($EXPRC_TRITON_PYTHON or .tri36/)")
def test_subset_under_the_other_triton(tmp_path) -> None:
    """The same subset compiled by another Triton (no torch there): no spills, no failures."""
    from exprc.cli import main

    assert main(["bench", "static", "--python", _other_triton(), "--subset", "--results-dir", str(tmp_path),
                 "--readme", ""]) == 0
    doc = json.loads((tmp_path / "static-sm90.json").read_text())
    (version, run), = doc["runs"].items()
    import triton

    assert version != triton.__version__ and run["subset"] and run["complete"]
    assert run["summary"]["spilled"] == run["summary"]["failed"] == 0 and run["summary"]["kernels"] == 21


def test_records_are_reused_per_kind_only_while_that_kinds_sources_are_unchanged(tmp_path, monkeypatch) -> None:
    """A change to one kernel family recompiles its kernels only: the other kinds' records stay reusable."""
    now = static.kernel_sources()
    records = [{"kind": kind, "storage": "bfloat16", "code": "c", "config": None, "precision": None}
               for kind in ("elementwise", "epilogue", "copy")]
    doc = tmp_path / "static-sm90.json"

    def write(sources: dict) -> None:
        doc.write_text(json.dumps({"runs": {"9.9": {"sources": sources, "kernels": records}}}))

    write(now)
    assert {k[0] for k in static.reusable(doc, "9.9")} == {"elementwise", "epilogue", "copy"}
    assert static.reusable(doc, "9.8") == {}
    write({**now, "runtime/kernels/matmul_epilogue.py": "changed"})
    assert {k[0] for k in static.reusable(doc, "9.9")} == {"elementwise", "copy"}
    write({**now, "codegen/sass.py": "changed"})
    assert static.reusable(doc, "9.9") == {}
    write({n: h for n, h in now.items() if n != "benchmarks/static_baselines.py"})
    assert {k[0] for k in static.reusable(doc, "9.9")} == {"elementwise", "epilogue"}


def test_each_kinds_sources_hold_every_kernel_file_it_imports() -> None:
    """Reuse keys on the digests of a kind's sources: a jit helper module a kernel family imports (`jit_helpers`,
    directly or through another helper) that is missing from KIND_SOURCES would let a changed helper keep stale
    records."""
    import re

    root = Path(static.__file__).resolve().parents[1]
    families = {"elementwise": "elementwise", "backward": "elementwise_backward", "epilogue": "matmul_epilogue",
                "epilogue-tma": "matmul_epilogue_tma", "prologue": "matmul_prologue"}

    def imported(name: str, seen: set[str]) -> set[str]:
        text = (root / "runtime" / "kernels" / f"{name}.py").read_text()
        for helper in re.findall(r'jit_helpers\("(\w+)"\)', text):
            if helper not in seen:
                seen.add(helper)
                imported(helper, seen)
        return seen

    for kind, fam in families.items():
        need = {f"runtime/kernels/{n}.py" for n in imported(fam, {fam})}
        assert need <= set(static.KIND_SOURCES[kind]), (kind, need - set(static.KIND_SOURCES[kind]))


def test_occupancy_from_registers_threads_and_shared_memory() -> None:
    assert static.ctas_per_sm(90, 128, 8, 0) == 2  # 128 registers x 256 threads: half the register file each
    assert static.ctas_per_sm(90, 255, 4, 0) == 2  # 255 rounds to 256 a thread: 32K registers a program
    assert static.ctas_per_sm(90, 32, 4, 0) == 16  # threads: 2048 / 128
    assert static.ctas_per_sm(90, 64, 4, 100 * 1024) == 2  # shared memory: 228 KB / (100 + 1) KB
    assert static.ctas_per_sm(80, 64, 4, 100 * 1024) == 1  # 164 KB on sm_80
    assert static.ctas_per_sm(90, None, 4, 0) is None


def test_a_kinds_run_replaces_only_its_own_kinds_records(tmp_path) -> None:
    """`--kinds copy` into a document that holds other kinds' records keeps them (and the section's partial mark)."""
    import triton

    other = {"kind": "elementwise", "storage": "bfloat16", "code": "c", "config": None, "precision": None,
             "registers": 40, "spills": 0}
    stale_copy = {**other, "kind": "copy", "code": None, "registers": 999}
    doc = {"format": static.FORMAT, "arch": 90,
           "runs": {triton.__version__: {"triton": triton.__version__, "complete": False, "sources": {},
                                         "kernels": [other, stale_copy]}}}
    (tmp_path / "static-sm90.json").write_text(json.dumps(doc))
    assert static.main(["--kinds", "copy", "--arch", "90", "--jobs", "1", "--results-dir", str(tmp_path),
                        "--readme", ""]) == 0
    run = json.loads((tmp_path / "static-sm90.json").read_text())["runs"][triton.__version__]
    kinds = [k["kind"] for k in run["kernels"]]
    assert kinds.count("elementwise") == 1 and 999 not in [k["registers"] for k in run["kernels"]]
    assert kinds.count("copy") >= 1 and set(kinds) == {"elementwise", "copy"}
    assert run["complete"] is False and run["planned"] == len(kinds)
