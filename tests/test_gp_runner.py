"""Running many searches: worker processes that stop at once on failure or Ctrl-C and lose no result, and array
tasks of a cluster job (--shard I/N) writing into one resumable output. Searches are stand-ins: no JAX needed."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from exprc.gp import runner
from exprc.gp.executors import execute
from exprc.gp.mappings import LayerMapping, Mappings, load_mappings, save_mappings
from exprc.gp.search import SearchConfig, SeedResult

LIVENESS_S = 120  # a bound on a hang, not a timing: a terminated pool returns in seconds, a waiting one never


def _mappings(path, names=("blocks.0.norm1", "norm")):
    rng = np.random.default_rng(0)
    layers = {n: LayerMapping(rng.normal(size=200).astype(np.float32), rng.normal(size=200).astype(np.float32))
              for n in names}
    save_mappings(path, Mappings(layers, "vit"))
    return load_mappings(path)


def _member(seed: int) -> dict:
    return {"expr": f"{seed}*x", "complexity": 1.0, "nodes": 3, "train_fitness": float(seed),
            "val_fitness": float(seed), "mse": 0.0, "r2": 1.0, "seed": seed}


def _blocking_or_failing_task(x, y, config, seed, ticks):
    """Seed 1 fails at once; every other seed would run for an hour."""
    if seed == 1:
        raise ValueError("search 1 failed")
    time.sleep(3600)


def _slowly_finishing_task(x, y, config, seed, ticks):
    time.sleep(0.2 * seed)
    ticks.put(1)
    return SeedResult(seed, [_member(seed)], 1.0, 0.0)


def _plan(tmp_path, jobs=2, seeds=(1, 2, 3), shard=None):
    m = _mappings(tmp_path / "m.npz")
    return runner.EvolvePlan(tmp_path / "m.npz", m, m.names(), list(seeds), SearchConfig(population=4, generations=1),
                             "val", tmp_path / "layers.json", jobs=jobs, shard=shard)


def _in_thread(fn):
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: B036 - the test looks at what was raised
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(LIVENESS_S)
    assert not t.is_alive(), "the pool waited for the other searches instead of stopping them"
    return box


def test_a_failing_search_stops_the_others_at_once(tmp_path):
    plan = _plan(tmp_path)
    box = _in_thread(lambda: execute([("norm", 2), ("norm", 1), ("norm", 3)], plan, lambda n: None,
                                     lambda layer, r: None, task=_blocking_or_failing_task))
    assert isinstance(box.get("error"), ValueError) and "search 1 failed" in str(box["error"])


def test_ctrl_c_stops_the_workers(tmp_path):
    plan = _plan(tmp_path)

    def interrupted(layer, result):
        raise KeyboardInterrupt

    tasks = [("norm", 5), ("blocks.0.norm1", 7), ("norm", 7)]  # seed 5 ends first; the others would take longer
    box = _in_thread(lambda: execute(tasks, plan, lambda n: None, interrupted,
                                     task=_slow_then_block_task))
    assert isinstance(box.get("error"), KeyboardInterrupt)


def _slow_then_block_task(x, y, config, seed, ticks):
    if seed != 5:
        time.sleep(3600)
    return SeedResult(seed, [_member(seed)], 1.0, 0.0)


def test_no_result_is_lost_while_another_is_being_recorded(tmp_path):
    plan = _plan(tmp_path, jobs=3)
    got = []

    def slow_record(layer, result):  # searches end while this one is being written
        time.sleep(1.0)
        got.append((layer, result.seed))

    tasks = [("norm", 1), ("norm", 2), ("norm", 3), ("blocks.0.norm1", 1)]
    execute(tasks, plan, lambda n: None, slow_record, task=_slowly_finishing_task)
    assert sorted(got) == sorted(tasks)


def test_array_tasks_share_the_work_and_a_plain_run_merges(tmp_path, monkeypatch):
    """Three array tasks (--shard i/3) of 2 layers x 3 seeds: each runs its own searches into its own partial
    file and writes no OUTPUT; the plain run afterwards searches nothing and writes everything."""
    ran = []

    def fake_execute(tasks, plan, tick, on_result, task=None):
        for layer, seed in tasks:
            ran.append((plan.shard, layer, seed))
            on_result(layer, SeedResult(seed, [_member(seed)], 1.0, 0.5))

    monkeypatch.setattr(runner, "execute", fake_execute)
    for i in range(3):
        runner.evolve(_plan(tmp_path, shard=(i, 3)), progress=False, log=lambda s: None)
    assert not (tmp_path / "layers.json").exists()
    assert sorted(p.name for p in tmp_path.glob("layers.json.partial*")) == [
        "layers.json.partial.0of3.jsonl", "layers.json.partial.1of3.jsonl", "layers.json.partial.2of3.jsonl"]
    searched = sorted((layer, seed) for _, layer, seed in ran)
    assert searched == sorted((n, s) for n in ("blocks.0.norm1", "norm") for s in (1, 2, 3))  # each exactly once
    assert all(len([r for r in ran if r[0] == (i, 3)]) == 2 for i in range(3))
    ran.clear()
    runner.evolve(_plan(tmp_path, shard=(1, 3)), progress=False, log=lambda s: None)  # rerun of a done task
    assert ran == []
    doc = runner.evolve(_plan(tmp_path), progress=False, log=lambda s: None)
    assert ran == [] and sorted(doc["layers"]) == ["blocks.0.norm1", "norm"]
    seeds = json.loads((tmp_path / "layers.json").read_text())["layers"]["norm"]["seeds"]
    assert [(s["seed"], s["expr"]) for s in seeds] == [(1, "1*x"), (2, "2*x"), (3, "3*x")]
    assert not list(tmp_path.glob("layers.json.partial*"))


@pytest.mark.parametrize("text", ["3/3", "a/2", "1", "1/x"])
def test_bad_shard_is_a_user_error(tmp_path, text, capsys):
    from exprc.cli import main

    _mappings(tmp_path / "m.npz")
    assert main(["evolve", str(tmp_path / "m.npz"), "-o", str(tmp_path / "o.json"), "--shard", text]) == 2
    assert "--shard expects I/N" in capsys.readouterr().err
