"""Numpy stand-ins for the `libdevice` functions generated code calls, for Triton's interpreter only.

Triton's interpreter (TRITON_INTERPRET=1) runs a jit function as Python on numpy-backed tensors but cannot run
`libdevice` calls (they are stubs there). Generated modules bind the name `libdevice` to this module when
interpreting (see `support.libdevice_module`); compiled code always uses the real libdevice.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import triton.language as tl


def _elementwise(np_fn: Callable[[np.ndarray], np.ndarray]):
    def fn(arg0, _semantic=None):
        from triton.runtime.interpreter import TensorHandle

        handle = arg0.handle
        with np.errstate(all="ignore"):
            data = np.asarray(np_fn(handle.data)).astype(handle.data.dtype, copy=False)
        return tl.tensor(TensorHandle(data, handle.dtype.scalar), arg0.type)

    fn.__name__ = np_fn.__name__
    return fn


tanh = _elementwise(np.tanh)
exp = _elementwise(np.exp)
rint = _elementwise(np.rint)  # round half to even, as libdevice's rint
