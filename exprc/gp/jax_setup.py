"""How a process that runs searches sets JAX up: host devices, threads, and a persistent compilation cache.

XLA reads its flags once, when JAX first starts a backend, so `prepare` must run before anything imports jax
(`exprc evolve` calls it first thing; so does each worker process). On a CPU:

- `host_devices=N` makes XLA show N CPU devices; a single search shards its trees over them, so one search
  uses N cores (XLA otherwise runs these element-wise loops on one thread);
- with several worker processes, each gets one device and XLA's Eigen thread pool is turned off: there are
  already as many workers as cores.

The compilation cache (JAX's own persistent cache) keeps compiled searches under `~/.cache/exprc/jax` (or
`$EXPRC_CACHE_DIR/jax`), so a second process with the same settings does not compile again.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path



def cache_dir() -> Path:
    root = os.environ.get("EXPRC_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "exprc")
    return Path(root) / "jax"


def _set_flag(flag: str, value: str) -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if flag not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {flag}={value}".strip()


def prepare(host_devices: int = 1, single_threaded: bool = False) -> None:
    """Set XLA's flags for this process. Once JAX is imported they cannot change: then this does nothing, and
    the searches use the devices JAX has (`local_cpu_devices`)."""
    if "jax" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if host_devices > 1:
        _set_flag("--xla_force_host_platform_device_count", str(host_devices))
    if single_threaded:
        _set_flag("--xla_cpu_multi_thread_eigen", "false")


def enable_compilation_cache() -> None:
    """JAX's persistent compilation cache in `cache_dir()`; does nothing if the directory cannot be made."""
    import jax

    path = cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def local_cpu_devices() -> int:
    import jax

    return len(jax.local_devices()) if jax.default_backend() == "cpu" else 1
