"""`kernels/` in the repository is exactly what `exprc compile examples/vit_b16_paper.json -o kernels/` writes.

Compared against the committed files (`git show HEAD:...`) when the repository is a git checkout, so that the
README's set-up command (which recompiles into kernels/) cannot make this test pass by overwriting them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _committed(rel: str) -> bytes | None:
    try:
        r = subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:{rel}"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None


def _committed_listing() -> set[str] | None:
    try:
        r = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", "HEAD", "kernels/"],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {Path(p).name for p in r.stdout.split()} if r.returncode == 0 and r.stdout.strip() else None


def test_committed_kernels_equal_a_fresh_compile(tmp_path: Path) -> None:
    out = tmp_path / "kernels"
    subprocess.run([sys.executable, "-m", "exprc.cli", "compile", str(ROOT / "examples" / "vit_b16_paper.json"),
                    "-o", str(out), "-q"], check=True, cwd=tmp_path, timeout=300)
    fresh = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    listing = _committed_listing()
    if listing is None:  # not a git checkout: compare with the working tree
        listing = {p.name for p in (ROOT / "kernels").iterdir() if p.is_file()}
        committed = {n: (ROOT / "kernels" / n).read_bytes() for n in listing}
    else:
        committed = {n: _committed(f"kernels/{n}") for n in listing}
    stale = "kernels/ is stale: rerun `exprc compile examples/vit_b16_paper.json -o kernels/`"
    assert set(fresh) == set(committed), stale
    for name, data in fresh.items():
        assert committed[name] == data, f"kernels/{name} differs from a fresh compile"
