"""One choice of a Pareto point for layer files and `exprc evolve`: `exprc.selection`, the knee's ties included.

Each front is checked three ways, which must agree: `exprc.selection.choose`, the GP stage's `gp.pareto.select`
on its member dicts, and `read_layers` on the same front written as a Kozax `pareto_front.csv`.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from exprc.frontend.layer_files import read_layers
from exprc.gp.pareto import ParetoArchive, knee_index, select
from exprc.selection import SELECTIONS, Point, choose, pareto_front

EXPRS = [f"{k}*x" for k in range(2, 12)]  # distinct expressions to tell the points apart


def _three_ways(tmp_path: Path, complexity: list[float], error: list[float], how: str) -> int:
    """The index each of the three ways picks, checked to be the same."""
    direct = choose([Point(c, e, e) for c, e in zip(complexity, error, strict=True)], how)
    members = [{"complexity": c, "val_fitness": e, "train_fitness": e, "expr": EXPRS[i]}
               for i, (c, e) in enumerate(zip(complexity, error, strict=True))]
    gp = EXPRS.index(select(members, how)["expr"])
    rows = "".join(f"{c!r},{e!r},{EXPRS[i]}\n" for i, (c, e) in enumerate(zip(complexity, error, strict=True)))
    path = tmp_path / "L" / "pareto_front.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Complexity,Fitness,Equation 0\n" + rows)
    frontend = EXPRS.index(read_layers(path, select=how).layers["L"].expr)
    assert direct == gp == frontend, (direct, gp, frontend)
    return direct


POWERS_OF_TEN = ([1, 2, 3, 4, 5], [1e-1, 1e-2, 1e-3, 1e-4, 1e-5])


def test_power_of_ten_front_has_no_knee_so_the_most_accurate_point(tmp_path):
    # log10(error) falls by 1 per complexity step: a straight line on the knee's scales, every point on the
    # chord. Not the simplest (the worst point, as gp.pareto picked), nor the 2nd (the old frontend's pick).
    assert _three_ways(tmp_path, *POWERS_OF_TEN, "knee") == 4


def test_knee_is_the_point_farthest_below_the_chord(tmp_path):
    # scaled: x = 0, .25, .5, 1 and y = 1, .5, .375, 0 -> below the chord y = 1 - x by 0, .25, .125, 0
    error = [1.0, 10 ** -2.0, 10 ** -2.5, 1e-4]
    assert _three_ways(tmp_path, [0, 1, 2, 4], error, "knee") == 1
    assert _three_ways(tmp_path, [1, 2, 3, 10, 20], [1.0, 0.5, 0.011, 0.01, 0.0099], "knee") == 2


def test_knee_tie_goes_to_the_simpler_point(tmp_path):
    # scaled: x = 0, .25, .75, 1 and y = 1, .625, .125, 0 -> both inner points .125 below the chord
    error = [1.0, 10 ** -1.5, 10 ** -3.5, 1e-4]
    assert _three_ways(tmp_path, [0, 1, 3, 4], error, "knee") == 1
    order = [3, 0, 2, 1]  # the rule does not depend on the order of the rows
    picked = choose([Point([0, 1, 3, 4][i], error[i]) for i in order], "knee")
    assert order[picked] == 1


@pytest.mark.parametrize("complexity, error, expected", [
    ([3], [0.5], 0),
    ([3, 7], [0.5, 0.1], 1),  # both on the chord: the most accurate
    ([7, 3], [0.1, 0.5], 0),
    ([3, 3, 7], [0.5, 0.2, 0.3], 1),  # one front point: 0 and 2 are dominated by 1
    ([1, 2, 3], [0.1, 0.01, 0.0001], 2),  # bends upwards: no knee
])
def test_fronts_of_one_and_two_points(tmp_path, complexity, error, expected):
    assert _three_ways(tmp_path, complexity, error, "knee") == expected


def test_dominated_and_unknown_points_are_never_the_knee(tmp_path):
    # 1 is dominated (a simpler point is as good), 3 has no error: the front is 0, 2, 4
    complexity, error = [1, 2, 3, 4, 5], [1.0, 1.0, 1e-3, math.nan, 1e-4]
    assert _three_ways(tmp_path, complexity, error, "knee") == 2
    assert pareto_front(complexity, error) == [0, 2, 4]
    assert knee_index([1, 2], [math.nan, math.nan]) == 0  # nothing finite: val's order, the simpler first


@pytest.mark.parametrize("how, expected", [("val", 2), ("train", 2), ("simplest", 0), ("knee", 2)])
def test_every_selection_ties_to_the_simpler_then_the_earlier(tmp_path, how, expected):
    # 1 and 2 tie on error with 2 simpler; 0 and 3 tie on complexity with 0 more accurate
    assert _three_ways(tmp_path, [1, 5, 3, 1], [0.5, 0.01, 0.01, 0.7], how) == expected


def test_val_and_train_are_separate_columns():
    points = [Point(1, val=0.2, train=0.1), Point(2, val=0.1, train=0.3), Point(3, val=math.nan, train=0.05)]
    assert choose(points, "val") == 1 and choose(points, "train") == 2 and choose(points, "simplest") == 0
    assert choose(points, "complexity") == 0  # the alias read_layers has always accepted


def test_unknown_selection_and_empty_front():
    assert SELECTIONS == ("val", "train", "simplest", "knee")
    with pytest.raises(ValueError, match="best"):
        choose([Point(1, 0.1)], "best")
    with pytest.raises(ValueError, match="empty"):
        select([], "val")


def test_archive_front_is_the_shared_front():
    shuffled = list(zip([4, 1, 3, 2, 5], [0.2, 0.9, 0.2, 0.5, 0.01], strict=True))
    random.Random(0).shuffle(shuffled)
    archive = ParetoArchive(max_fitness=1e9)
    for c, f in shuffled:
        archive.add([f], [c], [f"t{c}"])
    assert [(c, f) for c, f, _ in archive.front()] == [(1, 0.9), (2, 0.5), (3, 0.2), (5, 0.01)]


def test_neither_reader_nor_selection_imports_the_cost_model():
    code = ("import sys, exprc.frontend.layer_files, exprc.selection, exprc.gp.pareto; "
            "assert 'exprc.cost' not in sys.modules, 'exprc.cost imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
