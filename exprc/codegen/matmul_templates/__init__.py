"""Source templates (``string.Template``) of the fused matmul kernels.

Each template is one readable Triton module with ``$name`` holes: the header, the expression function (from
``emit_triton.emit_expr_function``) and the autotune configurations are filled in by ``matmul_epilogue`` and
``matmul_prologue``. The kernels call the expression as ``expr_fn(v, FAST_ASM)`` on an f32 tile.
"""
