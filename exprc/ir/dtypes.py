"""Data types: f32 is the compute type; i32 and bool appear only after lowering.

Storage dtypes (f16, bf16, f32) matter at loads and stores in generated kernels, never inside the IR.
"""

from __future__ import annotations

from enum import Enum

import numpy as np


class DType(Enum):
    F32 = "f32"
    I32 = "i32"
    BOOL = "bool"

    def __repr__(self) -> str:
        return f"DType.{self.name}"

    @property
    def numpy(self) -> np.dtype:
        return {DType.F32: np.dtype(np.float32), DType.I32: np.dtype(np.int32), DType.BOOL: np.dtype(bool)}[self]


F32, I32, BOOL = DType.F32, DType.I32, DType.BOOL
