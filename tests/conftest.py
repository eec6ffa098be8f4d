"""Shared test set-up: a private cache for kernels generated on the fly, Triton's interpreter on demand, and
skipping `@pytest.mark.gpu` tests on machines without CUDA."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_kernel_cache(tmp_path_factory):
    """Kernels that ExprNorm generates from expression text go to a temporary directory, not ~/.cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("EXPRC_CACHE_DIR", str(tmp_path_factory.mktemp("exprc-kernel-cache")))
    yield
    patch.undo()


@pytest.fixture
def triton_interpret(monkeypatch):
    """TRITON_INTERPRET=1 during the test: kernel modules imported meanwhile run in Triton's interpreter (on CPU
    tensors) for the rest of the session; modules imported without it stay compiled.

    Triton itself is imported first, outside the interpreter: its standard library then stays compiled-mode
    for the whole session whatever the test order (Triton cannot switch it later), and generated kernels use
    only builtins, which both modes run."""
    import triton.language  # noqa: F401

    monkeypatch.setenv("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in gpu_items:
            item.add_marker(skip)
