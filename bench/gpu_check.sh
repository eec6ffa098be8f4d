#!/usr/bin/env bash
# The one GPU check, for a fresh H100/H200 machine with torch 2.11, Triton 3.6 and Python 3.12; about 5 minutes
# with its compiles. From the repository root (or anywhere):
#
#     bash bench/gpu_check.sh            # results into bench/results/, named by the GPU
#
#   0. installs the wheels in .whl/ (liger-kernel, kozax and timm travel as wheels, made on a networked machine
#      with `pip download --no-deps -d .whl liger-kernel kozax timm`; .whl/ is git-ignored: carry it along);
#   1. bench/gpu_constexpr_check.py: kernels taking the expression as a constexpr jit function run under
#      torch.compile, compiled outputs compared with eager ones (gpu-check-<gpu>.json);
#   2. the GPU tests (pytest -m gpu);
#   3. the key benchmark rows: element-wise kernel vs device copy bandwidth (ViT-B and LLM widths, bf16 and f32),
#      fused fc2 + residual + norm vs the cuBLAS matmul alone, ViT-B/16 images/s vs LayerNorm and torch.compile;
#   4. the README's benchmark table from them.
# Each step has its own time limit and the next one runs whatever happened; the exit status is 1 if any failed.
set -u
cd "$(dirname "$0")/.."
RESULTS=${EXPRC_RESULTS_DIR:-bench/results}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0
step() {  # step NAME SECONDS COMMAND...: run with a time limit, report, remember a failure
    local name=$1 limit=$2; shift 2
    echo "=== $name (limit ${limit}s)"
    local t0=$SECONDS
    timeout "$limit" "$@"; local rc=$?
    echo "=== $name: exit $rc after $((SECONDS - t0))s"
    [ "$rc" -eq 0 ] || status=1
}

if ls .whl/*.whl >/dev/null 2>&1; then
    python -m pip install -q --no-index --no-deps .whl/*.whl || status=1
else
    echo "no .whl/*.whl: liger-kernel, kozax and timm must be installed already"
fi
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"

step "torch.compile with a constexpr jit function" 100 python bench/gpu_constexpr_check.py --results-dir "$RESULTS"
step "GPU tests" 80 python -m pytest -m gpu -q -p no:cacheprovider $(grep -l "mark.gpu" tests/*.py)
LAYERS=bench/gpu_check_layers.json
step "element-wise vs copy" 45 python -m exprc bench kernels --layers "$LAYERS" --modes auto --dtypes bfloat16,float32 \
    --only '/(copy|torch-layernorm|liger-layernorm|liger-dyt|exprc-auto)/.*/(50432x768|16384x4096)/' \
    --results-dir "$RESULTS" --no-plots --budget 35
step "fused fc2 vs cuBLAS" 45 python -m exprc bench epilogue --layers "$LAYERS" --modes auto --dtypes bfloat16 \
    --only '/(linear|linear\+add\+layernorm|exprc-fused-auto)/.*/fc2 M(6304|50432) ' \
    --results-dir "$RESULTS" --no-plots --budget 35
step "ViT-B/16 images/s" 90 python -m exprc bench vit --layers examples/vit_b16_paper.json --modes auto --batches 32 \
    --only '/(timm-layernorm|timm-layernorm-compiled|exprc-auto-fused)/' --results-dir "$RESULTS" --no-plots --budget 80
step "README table" 20 python -m exprc bench report --results-dir "$RESULTS"
echo "gpu_check: $([ $status -eq 0 ] && echo all steps passed || echo SOME STEPS FAILED); results in $RESULTS/"
exit $status
