"""The command line: help, exit statuses, one-line errors that say what and where."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exprc.cli import main
from exprc.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PAPER = str(ROOT / "examples" / "vit_b16_paper.json")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exprc.cli", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_every_command() -> None:
    r = run("--help")
    assert r.returncode == 0
    for name in COMMANDS:
        assert name in r.stdout


@pytest.mark.parametrize("cmd", COMMANDS)
def test_each_command_has_help(cmd: str, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage: exprc " + cmd in capsys.readouterr().out


def test_check_ok(capsys) -> None:
    assert main(["check", PAPER]) == 0
    assert "ok: 25 layers" in capsys.readouterr().out


@pytest.mark.parametrize("text, what", [
    ('{"a": "tanh(x) + foo(x)"}', "unknown function 'foo'"),
    ('{"a": "tanh(x"}', "syntax error"),
    ('{"a": "x**2.5"}', "integer"),
    ('{"a": "x**1000"}', "-16..16"),
    ('{"a": "1e999*x"}', "not a finite"),
    ('{"a": "y + 1"}', "unknown name 'y'"),
    ('{"a": "__import__(\'os\').system(\'touch pwned\')"}', "__import__"),
])
def test_check_bad_expression_is_one_clear_error(tmp_path: Path, text: str, what: str) -> None:
    f = tmp_path / "layers.json"
    f.write_text(text)
    r = run("check", str(f))
    assert r.returncode == 2, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("exprc check: error:") and what in first, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_missing_file_is_exit_2(tmp_path: Path) -> None:
    r = run("cost", str(tmp_path / "nope.json"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_explain_shows_every_pass_and_code() -> None:
    r = run("explain", PAPER, "--layer", "blocks.8.norm1", "--mode", "horner", "--trace")
    assert r.returncode == 0, r.stderr
    for name in ("fold-constants", "simplify", "ranges", "fuse-clip-tanh", "lower-transcendentals", "share-exp",
                 "lower-exp"):
        assert f"after {name}:" in r.stdout
    assert "@triton.jit" in r.stdout


def test_explain_unknown_layer_and_pass() -> None:
    assert run("explain", PAPER, "--layer", "nope").returncode == 2
    assert run("explain", PAPER, "--print-after", "nope").returncode == 2


def test_cost_table_total() -> None:
    r = run("cost", PAPER)
    assert r.returncode == 0 and "474d" in r.stdout
    assert json.loads(run("cost", PAPER, "--json").stdout)["total_flops_paper"] == 474


def test_python_m_exprc() -> None:
    r = subprocess.run([sys.executable, "-m", "exprc", "--help"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: exprc") and "cost" in r.stdout


QUIET_EXIT = (0, 141)  # 141: killed by SIGPIPE, what a shell reports for `yes | head -1`


@pytest.mark.parametrize("args", [["cost", PAPER], ["check", PAPER]], ids=["cost", "check"])
def test_output_into_a_closed_pipe_is_quiet(args: list[str]) -> None:
    """The reader of stdout is gone before the command writes: no traceback, no error message."""
    proc = subprocess.Popen([sys.executable, "-m", "exprc", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) in QUIET_EXIT and err == ""


def test_piping_into_head_is_quiet() -> None:
    """`exprc cost ... | head`, with a head that stops before exprc writes (`| head -2` stops after the first
    chunk, which may or may not hold all of the output: a race, so not the test)."""
    cmd = f"'{sys.executable}' -m exprc cost '{PAPER}' | head -n 0; exit ${{PIPESTATUS[0]}}"
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300)
    assert r.returncode in QUIET_EXIT and r.stderr == "" and r.stdout == "", r.stderr
