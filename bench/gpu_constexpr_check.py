"""Step 1 of bench/gpu_check.sh: does a Triton kernel that takes the expression as a `tl.constexpr` jit function
run under `torch.compile` on this GPU, and give the outputs it gives eagerly?

exprc's operators launch such kernels through `torch.library.wrap_triton` inside `triton_op`s; Inductor has had
bugs with user Triton kernels (constexpr function arguments among them), so on a new torch this is checked first,
on the real operators: the element-wise norm (f32, and bf16 whose auto lowering is fast: inline PTX), its backward,
and the fused Linear + residual + norm. Each check compares the compiled output with the eager Triton output
(bit for bit) and with the generated torch code (within the dtype's rounding). Writes
RESULTS_DIR/gpu-check-<gpu>.json and exits 1 when a check fails.

    python bench/gpu_constexpr_check.py [--results-dir bench/results]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import traceback
from pathlib import Path

import torch

DEEP = "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)"  # three tanh: fast in bf16 under auto


def _compare(name: str, compiled, eager, torch_ref, dtype) -> dict:
    exact = all(torch.equal(a, b) for a, b in zip(compiled, eager, strict=True))
    tol = 4 * torch.finfo(dtype).eps
    worst = max(float(((a.float() - r.float()).abs() / (1 + r.float().abs())).max())
                for a, r in zip(compiled, torch_ref, strict=True))
    return {"check": name, "ok": exact and worst <= tol, "bitwise_equal_to_eager": exact,
            "max_error_vs_torch_code": worst, "tolerance": tol}


def check_norm(dtype: torch.dtype) -> dict:
    from exprc import ExprNorm

    torch._dynamo.reset()
    norm = ExprNorm(768, DEEP).cuda()
    ref_norm = ExprNorm(768, DEEP, backend="torch").cuda()
    x = torch.randn(4 * 197, 768, device="cuda").mul(3).to(dtype)
    with torch.no_grad():
        eager = norm(x)
        compiled = torch.compile(norm, fullgraph=True)(x)
        ref = ref_norm(x)
    return _compare(f"expr_norm forward {str(dtype)[6:]}", [compiled], [eager], [ref], dtype)


def check_backward(dtype: torch.dtype) -> dict:
    from exprc import ExprNorm

    torch._dynamo.reset()
    norm = ExprNorm(768, DEEP).cuda()
    x0 = torch.randn(2 * 197, 768, device="cuda").mul(3).to(dtype)

    def grads(fn):
        x = x0.clone().requires_grad_(True)
        fn(x).float().square().sum().backward()
        return x.grad

    eager = grads(norm)
    compiled = grads(torch.compile(norm, fullgraph=True))
    ref_norm = ExprNorm(768, DEEP, backend="torch").cuda()
    return _compare(f"expr_norm backward {str(dtype)[6:]}", [compiled], [eager], [grads(ref_norm)], dtype)


def check_fused(dtype: torch.dtype) -> dict:
    from exprc import FusedLinearExprNorm

    torch._dynamo.reset()
    fused = FusedLinearExprNorm(3072, 768, DEEP).cuda().to(dtype)
    a = torch.randn(197, 3072, device="cuda", dtype=dtype)
    residual = torch.randn(197, 768, device="cuda", dtype=dtype)
    with torch.no_grad():
        eager = fused(a, residual)
        compiled = torch.compile(fused, fullgraph=True)(a, residual)
        r = residual + torch.nn.functional.linear(a, fused.linear.weight, fused.linear.bias)
        ref = (r, fused.norm.kernel.expr_torch(r.float()).to(dtype) * fused.norm.weight + fused.norm.bias)
    out = _compare(f"fused linear+residual+norm {str(dtype)[6:]}", list(compiled), list(eager), list(ref), dtype)
    out["ok"] = out["bitwise_equal_to_eager"] and out["max_error_vs_torch_code"] <= 0.05  # a K=3072 matmul's rounding
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results-dir", default="bench/results")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu_constexpr_check: no CUDA device", file=sys.stderr)
        return 2
    import triton

    gpu = torch.cuda.get_device_name()
    doc = {"device": gpu, "torch": torch.__version__, "triton": triton.__version__, "python": sys.version.split()[0],
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "checks": []}
    for check in (check_norm, check_backward, check_fused):
        for dtype in (torch.float32, torch.bfloat16):
            start = time.perf_counter()
            try:
                result = check(dtype)
            except Exception as e:  # noqa: BLE001 - recorded, and the next check runs
                result = {"check": f"{check.__name__} {str(dtype)[6:]}", "ok": False,
                          "error": f"{type(e).__name__}: {e}"[:2000], "traceback": traceback.format_exc()[-4000:]}
            result["seconds"] = round(time.perf_counter() - start, 1)
            doc["checks"].append(result)
            print(("ok    " if result["ok"] else "FAIL  ") + json.dumps({k: v for k, v in result.items()
                                                                         if k != "traceback"}), flush=True)
    name = re.sub(r"[^A-Za-z0-9]+", "-", gpu).strip("-")
    path = Path(args.results_dir) / f"gpu-check-{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path}")
    return 0 if all(c["ok"] for c in doc["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
