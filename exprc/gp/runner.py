"""Run the searches of many layers and seeds, in parallel processes, into a resumable `layers.json`.

Every (layer, seed) search is independent. Each finished search is appended to `OUTPUT.partial.jsonl`; each
finished layer (all its seeds) is chosen, scored and written into OUTPUT atomically (temporary file, rename).
A rerun with the same output, data and settings skips what is there and removes the partial file once all is
done; with other data or settings it stops rather than mixing results.
"""

from __future__ import annotations

import glob
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ExprcError
from .layer_results import finalize_layer, fronts_of, layers_document, read_document, write_json_atomic
from .mappings import Mappings
from .executors import execute
from .search import SearchConfig, SeedResult


@dataclass
class EvolvePlan:
    mappings_path: Path
    mappings: Mappings
    layers: list[str]  # which layers to search, in model order
    seeds: list[int]
    config: SearchConfig
    select: str  # "val" or "knee"
    output: Path
    jobs: int
    device: str = "cpu"  # "cpu" or "gpu"
    batch: int = 1  # searches vmapped together (the batched layout when > 1)
    shard: tuple[int, int] | None = None  # (i, n): only every n-th search from the i-th (a scheduler's array task)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _Results:
    """What is known so far: per layer, per seed, the front; and writing it out."""

    def __init__(self, plan: EvolvePlan, log: Callable[[str], None]):
        self.plan, self.log = plan, log
        self.meta = {"config": plan.config.as_json(), "mappings": str(plan.mappings_path),
                     "mappings_sha256": file_sha256(plan.mappings_path),
                     "points": sorted({len(plan.mappings.layers[n].x) for n in plan.layers}), "select": plan.select}
        self.partial_path = partial_path(plan.output, plan.shard)
        self.entries: dict[str, dict] = {}
        self.fronts: dict[str, dict[int, list[dict]]] = {}
        self.seconds: dict[str, dict[int, float]] = {}
        self._load_previous()

    def _same_run(self, meta: dict, where: Path) -> None:
        for key, what in (("config", "search settings"), ("mappings_sha256", "mappings file"),
                          ("points", "number of points")):
            if meta.get(key, self.meta[key]) != self.meta[key]:
                raise ExprcError(f"was made from another {what}; choose another -o, or remove it (and "
                                 f"{self.partial_path.name}) to start over", where=str(where))

    def _load_previous(self) -> None:
        doc = read_document(self.plan.output)
        if doc is not None:
            self._same_run(doc["gp"], self.plan.output)
            for name, entry in doc["layers"].items():
                self.entries[name] = entry
                self.fronts[name] = fronts_of(entry)
                self.seconds[name] = {s["seed"]: s.get("seconds") for s in entry.get("seeds", [])}
        for path in partial_paths(self.plan.output):
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
                self._same_run(rec, path)
                self.fronts.setdefault(rec["layer"], {})[rec["seed"]] = rec["front"]
                self.seconds.setdefault(rec["layer"], {})[rec["seed"]] = rec["seconds"]

    def todo(self) -> list[tuple[str, int]]:
        every = [(name, seed) for name in self.plan.layers for seed in self.plan.seeds]
        if self.plan.shard is not None:  # a fixed share of the whole list, whatever is done already
            i, n = self.plan.shard
            every = every[i::n]
        return [(name, seed) for name, seed in every if seed not in self.fronts.get(name, {})]

    def add(self, layer: str, result: SeedResult) -> None:
        record = {"layer": layer, "seed": result.seed, "front": result.front, "seconds": result.seconds,
                  **{k: self.meta[k] for k in ("config", "mappings_sha256", "points")}}
        with open(self.partial_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.fronts.setdefault(layer, {})[result.seed] = result.front
        self.seconds.setdefault(layer, {})[result.seed] = result.seconds
        if result.unparsed:
            self.log(f"{layer} seed {result.seed}: {len(result.unparsed)} front member(s) skipped "
                     f"(unreadable or not finite): {result.unparsed[0][:80]}")

    def layer_complete(self, layer: str) -> bool:
        return all(seed in self.fronts.get(layer, {}) for seed in self.plan.seeds)

    def finalize(self, layer: str) -> dict:
        mapping = self.plan.mappings.layers[layer]
        try:
            entry = finalize_layer(mapping, self.fronts[layer], self.plan.config, self.plan.select,
                                   self.seconds.get(layer))
        except ExprcError as e:
            raise e.with_where(layer) from None
        self.entries[layer] = entry
        return entry

    def write(self) -> dict:
        order = {name: i for i, name in enumerate(self.plan.mappings.names())}
        entries = dict(sorted(self.entries.items(), key=lambda kv: order.get(kv[0], len(order))))
        seeds = sorted({s for fr in self.fronts.values() for s in fr})
        doc = layers_document(self.plan.mappings.model, self.plan.config.clip, entries, {**self.meta, "seeds": seeds})
        write_json_atomic(self.plan.output, doc)
        return doc

    def finish(self) -> None:
        if self.plan.shard is None and not self.todo():
            for path in partial_paths(self.plan.output):
                path.unlink(missing_ok=True)


def partial_path(output: Path, shard: tuple[int, int] | None) -> Path:
    """Where finished searches are appended: one file, or one per array task (appends to one file from many
    machines are not safe on network file systems)."""
    tag = "" if shard is None else f".{shard[0]}of{shard[1]}"
    return output.with_name(f"{output.name}.partial{tag}.jsonl")


def partial_paths(output: Path) -> list[Path]:
    return sorted(output.parent.glob(f"{glob.escape(output.name)}.partial*.jsonl"))


def evolve(plan: EvolvePlan, progress: bool = True, log: Callable[[str], None] | None = None) -> dict:
    """Run every missing (layer, seed) search of `plan`; return the final document (also written to disk)."""
    from tqdm import tqdm

    log = log or (lambda s: print(s, file=sys.stderr))
    missing = [name for name in plan.layers if name not in plan.mappings.layers]
    if missing:
        raise ExprcError(f"no layer {missing[0]!r} in the mappings; it has: {', '.join(plan.mappings.names())}")
    results = _Results(plan, log)
    for name in plan.layers:  # choose again from stored fronts: --select may have changed
        if results.layer_complete(name):
            results.finalize(name)
    doc = results.write() if plan.shard is None else {}  # array tasks leave OUTPUT to the final plain run
    tasks = results.todo()
    share = len(plan.layers) * len(plan.seeds)
    if plan.shard is not None:
        share = len(range(plan.shard[0], share, plan.shard[1]))
        log(f"array task {plan.shard[0]} of {plan.shard[1]}: {share} search(es), {len(tasks)} to do")
    elif share > len(tasks):
        log(f"resuming {plan.output}: {share - len(tasks)} of {share} searches already done")
    with tqdm(total=len(tasks) * plan.config.generations, desc="evolve", unit="gen", file=sys.stderr,
              disable=not progress or None, dynamic_ncols=True) as bar:
        def on_result(layer: str, result: SeedResult) -> None:
            nonlocal doc
            results.add(layer, result)
            if plan.shard is None and results.layer_complete(layer):
                entry = results.finalize(layer)
                doc = results.write()
                bar.write(f"{layer}: {entry['expr']}  (val fitness {entry['val_fitness']:.4g}, "
                          f"R2 {entry['r2']:.4f}; DyT R2 {entry['dyt']['r2']:.4f})", file=sys.stderr)

        execute(tasks, plan, bar.update, on_result)
    results.finish()
    return doc
