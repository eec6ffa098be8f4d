"""Bad input: every problem is one `ExprcError` that says what was found and where; nothing is executed."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from exprc import ExprcError, parse
from exprc.frontend.layer_files import MAX_FILE_BYTES, MAX_LAYERS, read_layers

PACKAGE = Path(__file__).resolve().parents[1] / "exprc"


def pointed_at(err: ExprcError) -> str:
    """The text under the error's caret."""
    assert err.span is not None and err.source is not None, err
    line = err.source.split("\n")[err.span.line - 1]
    return line[err.span.start:err.span.end]


# (expression, words the message must contain, text the caret must be under)
BAD_EXPRESSIONS = [
    ("tanh(x) + foo(x)", ["unknown function 'foo'"], "foo"),
    ("2*y + 1", ["unknown name 'y'"], "y"),
    ("__import__('os').system('true')", ["only plain function names"], "__import__('os').system"),
    ("__import__('os')", ["unknown function '__import__'"], "__import__"),
    ("exec('x')", ["unknown function 'exec'"], "exec"),
    ("x +* 2", ["syntax error"], "*"),
    ("x ** 2.5", ["integer", "2.5"], "2.5"),
    ("x**100", ["-16..16", "100"], "100"),
    ("x**-17", ["-16..16", "-17"], "-17"),
    ("(1 - 1)**(-2)", ["division by zero"], "1 - 1"),
    ("x/1e-300", ["division by zero", "0 in float32"], "1e-300"),
    ("x/(2*3e-46)", ["division by zero", "0 in float32"], "2*3e-46"),
    ("x**x", ["literal integer"], "x"),
    ("1e999*x", ["1e999", "not a finite"], "1e999"),
    ("x + " + "9" * 400, ["not a finite"], "9" * 400),
    ("x.__class__", ["attribute access", "x.__class__"], "x.__class__"),
    ("lambda: x", ["lambda"], "lambda: x"),
    ("x[0]", ["subscript"], "x[0]"),
    ("x < 1", ["comparison"], "x < 1"),
    ("x if x else 1", ["conditional expression"], "x if x else 1"),
    ("x and 1", ["and/or"], "x and 1"),
    ("(x, x)", ["tuple"], "(x, x)"),
    ("[x]", ["list"], "[x]"),
    ("{x: 1}", ["dict"], "{x: 1}"),
    ("f'{x}'", ["f-string"], "f'{x}'"),
    ("(y := 1)", ["assignment expression"], "y := 1"),
    ("[t for t in x]", ["comprehension"], "[t for t in x]"),
    ("'abc' + x", ["str", "'abc'"], "'abc'"),
    ("1j*x", ["complex"], "1j"),
    ("True*x", ["bool"], "True"),
    ("x // 2", ["'//'"], "x // 2"),
    ("x % 2", ["'%'"], "x % 2"),
    ("~x", ["Invert"], "~x"),
    ("not x", ["Not"], "not x"),
    ("tanh", ["used without arguments"], "tanh"),
    ("tanh(x, x)", ["takes 1 argument, found 2"], "tanh(x, x)"),
    ("tanh(*x)", ["*args"], "tanh(*x)"),
    ("tanh(x=1)", ["keyword"], "1"),
    ("clip(x, 1)", ["clip takes 1 or 3 arguments"], "clip(x, 1)"),
    ("clip(x, 2, 1)", ["out of order"], "clip(x, 2, 1)"),
    ("clip(x, x, 1)", ["lower bound", "expression in x"], "x"),
    ("clip(x, -1, 1e300*1e300)", ["upper bound", "inf"], "1e300*1e300"),
    ("-" * 300 + "x", ["nested deeper than 200"], "-"),
    ("1/0", ["division by zero", "constant equal to 0"], "0"),
    ("x/0", ["division by zero"], "0"),
    ("x/(1-1)", ["division by zero", "'1-1'"], "1-1"),
    ("x/0.0", ["division by zero"], "0.0"),
    ("x/-0.0", ["division by zero"], "-0.0"),
    ("tanh(x)/(2*tanh(0)) + 1", ["division by zero"], "2*tanh(0)"),
    ("x/3/(clip(0) - 0)", ["division by zero"], "clip(0) - 0"),
    ("clip(x, 1/0, 1)", ["division by zero"], "0"),
    ("x/exp(-1000)", ["division by zero"], "exp(-1000)"),  # 0 in float64, as constant folding computes it
]


@pytest.mark.parametrize("text, words, under", BAD_EXPRESSIONS, ids=[b[0][:40] for b in BAD_EXPRESSIONS])
def test_bad_expression(text, words, under):
    with pytest.raises(ExprcError) as info:
        parse(text)
    err = info.value
    for w in words:
        assert w in err.message, (w, err.message)
    assert pointed_at(err).startswith(under)
    assert "\n" not in str(err)  # one line; the caret is in pretty()
    assert "^" in err.pretty()


@pytest.mark.parametrize("text", ["x/(x - x)", "x/1e-30", "x/(0.1 + 0.2 - 0.3)", "0/x"])
def test_division_by_what_is_not_a_constant_zero_is_accepted(text):
    parse(text)  # x - x is zero only after simplification; the constants are not 0 in float64 (folding's precision)


def test_check_reports_division_by_zero_with_a_caret(tmp_path, capsys):
    from exprc.cli import main

    path = write(tmp_path, "l.json", '{"layers": {\n  "norm": "tanh(x) + x/(1 - 1)"\n}}\n')
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"exprc check: error: {path}, line 2: layer 'norm': column 14: division by zero: the divisor "
                      "'1 - 1' is a constant equal to 0")
    assert err[1:] == ["    tanh(x) + x/(1 - 1)", "                 ^^^^^"]


def test_syntax_error_at_the_end_points_past_the_text():
    with pytest.raises(ExprcError, match="unexpected end") as info:
        parse("tanh(x) +")
    assert info.value.span.start == len("tanh(x) +")


def test_unclosed_parenthesis_points_at_it():
    with pytest.raises(ExprcError, match="never closed") as info:
        parse("2*tanh(x")
    assert pointed_at(info.value) == "("


@pytest.mark.parametrize("text, words", [
    ("", "empty expression"),
    ("  \n ", "empty expression"),
    ("x\x00", "NUL"),
    ("x+" * 15_000 + "x", "characters long"),
    ("(" * 10_000 + "x" + ")" * 10_000, "characters long"),
    ("tanh(" * 5000 + "x" + ")" * 5000, "characters long"),
    ("(" * 5000 + "x" + ")" * 5000, "too many nested parentheses"),
    ("tanh(" * 3000 + "x" + ")" * 3000, "too many nested parentheses"),
    ("-" * 15_000 + "x", "nested too deeply"),
    (" + ".join(["x"] * 5000), "nested too deeply"),
    ("x" + "**2" * 4000, "nested too deeply"),
])
def test_huge_or_deep_input_is_an_error_not_a_crash(text, words):
    with pytest.raises(ExprcError, match=words):
        parse(text)


def test_non_string_expression():
    with pytest.raises(ExprcError, match="expected an expression string, found int"):
        parse(3)  # type: ignore[arg-type]


def test_nothing_is_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for text in ["__import__('os').system('touch pwned')", "exec(\"open('pwned','w')\")",
                 "(lambda: open('pwned', 'w'))()", "x.__class__.__base__.__subclasses__()"]:
        with pytest.raises(ExprcError):
            parse(text)
    assert not (tmp_path / "pwned").exists()


def _called_name(call: ast.Call) -> str | None:
    f = call.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):  # sympy.sympify(s), builtins.eval(s); torch's module.eval() takes no argument
        return f.attr if call.args or f.attr in ("sympify", "parse_expr") else None
    return None


FORBIDDEN = {"eval", "exec", "sympify", "parse_expr"}


def _forbidden_uses(source: str) -> list[tuple[int, str]]:
    hits = []
    for node in ast.walk(ast.parse(source)):
        name = None
        if isinstance(node, ast.Call):
            name = _called_name(node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            name = next((a.name.split(".")[-1] for a in node.names if a.name.split(".")[-1] in FORBIDDEN), None)
        if name in FORBIDDEN:
            hits.append((node.lineno, name))
    return hits


def test_the_scan_finds_forbidden_calls():
    snippet = ("import sympy\nfrom sympy.parsing.sympy_parser import parse_expr\nsympy.sympify(s)\neval(s)\n"
               "builtins.exec(s)\nmodel.eval()\n")
    assert _forbidden_uses(snippet) == [(2, "parse_expr"), (3, "sympify"), (4, "eval"), (5, "exec")]


def test_package_never_calls_eval_exec_sympify_parse_expr():
    hits = [f"{path.relative_to(PACKAGE.parent)}:{line}: {name}"
            for path in sorted(PACKAGE.rglob("*.py"))
            for line, name in _forbidden_uses(path.read_text(encoding="utf-8"))]
    assert hits == []


# -- layer files -----------------------------------------------------------------------------------------------
def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read_error(source, **kw) -> ExprcError:
    with pytest.raises(ExprcError) as info:
        read_layers(source, **kw)
    assert "\n" not in str(info.value)
    return info.value


def test_missing_file(tmp_path):
    err = read_error(tmp_path / "nope.json")
    assert "no such file" in str(err) and "nope.json" in str(err)


@pytest.mark.parametrize("content", [b"", b"  \n\t\n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.json"
    path.write_bytes(content)
    assert "file is empty" in str(read_error(path))


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"n": "x\xe9"}')
    assert "not UTF-8" in str(read_error(path))


def test_huge_file_refused_without_reading(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written
    assert "limit" in str(read_error(path))


def test_directory_without_fronts(tmp_path):
    assert "no Kozax fronts" in str(read_error(tmp_path))


def test_unrecognized_content(tmp_path):
    err = read_error(write(tmp_path, "notes.txt", "hello world\n"))
    assert "unrecognized layer file" in str(err) and "hello world" in str(err)


def test_invalid_json_names_line_and_column(tmp_path):
    path = write(tmp_path, "bad.json", '{\n  "layers": {\n    "a": "x",\n  }\n}\n')
    err = read_error(path)
    assert "invalid JSON" in err.message and "bad.json" in str(err)
    assert err.span.line == 4 and "line 4" in str(err)


def test_deeply_nested_json(tmp_path):
    assert "JSON" in str(read_error(write(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000)))


@pytest.mark.parametrize("doc, words, under", [
    ([1, 2], "expected a JSON object at the top level, found a list", None),
    ({"format": "exprc.layers/2", "layers": {}}, "unsupported format 'exprc.layers/2'", '"format"'),
    ({"format": "exprc.layers/1"}, 'missing "layers"', None),
    ({"layers": ["x"]}, '"layers" must be an object', '"layers"'),
    ({"layers": {}}, "no layers", None),
    ({"layers": {"n": 3}}, "layer 'n': expected an expression string", '"n"'),
    ({"layers": {"n": {"val_fitness": 1}}}, 'found "expr" null', '"n"'),
    ({"layers": {"n": {"expr": ["x"]}}}, 'found "expr" a list', '"n"'),
    ({"model": 3, "layers": {"n": "x"}}, '"model" must be a string', '"model"'),
    ({"clip": [5, -5], "layers": {"n": "x"}}, "out of order", '"clip"'),
    ({"clip": [1, 1], "layers": {"n": "x"}}, "out of order", '"clip"'),
    ({"clip": [1], "layers": {"n": "x"}}, "two numbers", '"clip"'),
    ({"clip": [True, 2], "layers": {"n": "x"}}, "two numbers", '"clip"'),
    ({"clip": "5", "layers": {"n": "x"}}, "two numbers", '"clip"'),
])
def test_json_of_the_wrong_shape(tmp_path, doc, words, under):
    err = read_error(write(tmp_path, "l.json", json.dumps(doc, indent=1)))
    assert words in err.message, err.message
    if under is not None:
        assert pointed_at(err) == under


def test_non_finite_clip(tmp_path):
    err = read_error(write(tmp_path, "l.json", '{"clip": [-Infinity, 5], "layers": {"n": "x"}}'))
    assert "finite" in err.message
    assert "finite" in read_error({"n": "x"}, clip=(float("nan"), 1.0)).message


def test_duplicate_layer(tmp_path):
    text = '{"layers": {\n  "blocks.0.norm1": "x",\n  "norm": "x",\n  "blocks.0.norm1": "2*x"\n}}'
    err = read_error(write(tmp_path, "dup.json", text))
    assert "duplicate key 'blocks.0.norm1'" in err.message
    assert err.span.line == 4 and pointed_at(err) == '"blocks.0.norm1"'


def test_duplicate_key_inside_a_layer_object(tmp_path):
    text = '{"layers": {\n  "a": {"expr": "x"},\n  "b": {"expr": "x",\n        "expr": "tanh(x)"}\n}}'
    err = read_error(write(tmp_path, "dup.json", text))
    assert "duplicate key 'expr'" in err.message and err.span.line == 4


def test_duplicate_key_beside_the_same_key_one_level_down(tmp_path):
    text = '{"layers": {\n  "a": {\n    "a": "x", "expr": "x"},\n  "a": "2*x"\n}}'
    err = read_error(write(tmp_path, "dup.json", text))
    assert "duplicate key 'a'" in err.message
    assert err.span.line == 4 and pointed_at(err) == '"a"'


def test_duplicate_key_spelled_with_an_escape(tmp_path):
    text = '{"layers": {\n  "norm": "x",\n  "n\\u006frm": "2*x"\n}}'
    err = read_error(write(tmp_path, "dup.json", text))
    assert "duplicate key 'norm'" in err.message
    assert err.span.line == 3 and pointed_at(err) == '"n\\u006frm"'


def test_duplicate_key_reported_is_the_one_json_meets_first(tmp_path):
    # the outer object repeats "b" before the inner object repeats "c"; the inner one is complete first
    text = '{"layers": {"b": "x",\n "b": "x",\n "c": {"expr": "x", "c": 1,\n "c": 2}}}'
    err = read_error(write(tmp_path, "dup.json", text))
    assert "duplicate key 'c'" in err.message and err.span.line == 4 and pointed_at(err) == '"c"'


def test_no_private_json_internals():
    """Positions come from public means (`json_keys`), not from CPython's pure-Python scanner."""
    private = ("json.scanner", "json.decoder", "py_make_scanner", "scan_once", "JSONObject")
    hits = [f"{path.relative_to(PACKAGE.parent)}: {name}" for path in sorted(PACKAGE.rglob("*.py"))
            for name in private if name in path.read_text(encoding="utf-8")]
    assert hits == []


DOCUMENT_HEAD = '{\n  "format": "exprc.layers/1",\n  "model": "vit",\n  "clip": [-5, 5],\n  "layers": {\n'


@pytest.mark.parametrize("name", ["clip", "model", "layers", "format"])
def test_layer_named_like_a_top_level_key_is_reported_at_its_own_line(tmp_path, name):
    text = DOCUMENT_HEAD + f'    "norm": "x",\n    "{name}": "tanh(x) + foo(x)"\n  }}\n}}\n'
    path = write(tmp_path, "l.json", text)
    err = read_error(path)
    assert str(err).startswith(f"{path}, line 7: layer '{name}': column 11: unknown function 'foo'"), str(err)
    not_an_expression = text.replace('"tanh(x) + foo(x)"', "[1]")
    err = read_error(write(tmp_path, "l2.json", not_an_expression))
    assert err.span.line == 7 and pointed_at(err) == f'"{name}"'


def test_layer_named_like_an_earlier_layers_metadata_key(tmp_path):
    text = '{\n  "a": {"expr": "x", "seed": 1},\n  "seed": "x + foo(x)"\n}\n'
    path = write(tmp_path, "bare.json", text)
    assert str(read_error(path)).startswith(f"{path}, line 3: layer 'seed': column 5: unknown function 'foo'")


def test_top_level_key_after_a_layer_of_the_same_name(tmp_path):
    text = '{\n  "layers": {"clip": "x"},\n  "clip": [5, -5]\n}\n'
    err = read_error(write(tmp_path, "l.json", text))
    assert "out of order" in err.message and err.span.line == 3 and pointed_at(err) == '"clip"'


@pytest.mark.parametrize("name", [
    'blocks.0.norm1"', "blocks/0/norm1", "blocks.0.norm1\nimport os", "", "..norm", "blocks..0", "0blocks",
    "norm ", "a-b", "a\\b", "blocks.0.norm1'); import os; ('", "ñorm", "x" * 300,
])
def test_unsafe_layer_names(tmp_path, name):
    err = read_error(write(tmp_path, "l.json", json.dumps({"layers": {name: "x"}})))
    assert "invalid layer name" in err.message
    assert "\n" not in err.message and "\n" not in str(err)
    assert read_error({name: "x"}).message == err.message


def test_unsafe_layer_name_in_csv(tmp_path):
    header = "Layer,Run_Seed,Complexity_Rank,FLOPs,Train_MSE,Val_MSE,Expression\n"
    err = read_error(write(tmp_path, "p.csv", header + '"a/b",1,0,1,0.1,0.1,x\n'))
    assert "invalid layer name 'a/b'" in err.message and "line 2" in str(err)
    kozax = write(tmp_path, "front.csv", "Complexity,Fitness,Equation 0\n1,0.1,x\n")
    assert "invalid layer name" in read_error(kozax, layer="../etc").message


def test_too_many_layers(tmp_path):
    doc = {f"l{i}": "x" for i in range(MAX_LAYERS + 1)}
    assert f"the limit is {MAX_LAYERS}" in read_error(write(tmp_path, "many.json", json.dumps(doc))).message


def test_bad_expression_in_a_file_says_file_line_and_layer(tmp_path):
    text = '{\n  "layers": {\n    "blocks.0.norm1": "x",\n    "blocks.3.norm2": "tanh(x) + foo(2*x)"\n  }\n}\n'
    err = read_error(write(tmp_path, "l.json", text))
    assert str(err).startswith(f"{tmp_path / 'l.json'}, line 4: layer 'blocks.3.norm2': column 11: ")
    assert "unknown function 'foo'" in str(err)
    assert err.pretty().splitlines()[-1] == " " * 14 + "^^^"


@pytest.mark.parametrize("text, words", [
    ("Layer,Run_Seed,Expression\nn,1,x\n", "missing CSV column(s) Train_MSE, Val_MSE"),
    ("Layer,Run_Seed,Complexity_Rank,FLOPs,Train_MSE,Val_MSE,Expression\n", "no rows"),
    ("Layer,Run_Seed,Complexity_Rank,FLOPs,Train_MSE,Val_MSE,Expression\nn,1,0,1,0.1\n", "expected 7 fields"),
    ("Layer,Run_Seed,Complexity_Rank,FLOPs,Train_MSE,Val_MSE,Expression\nn,1,0,1,0.1,low,x\n",
     "Val_MSE: expected a number, found 'low'"),
    ("Layer,Run_Seed,Complexity_Rank,FLOPs,Train_MSE,Val_MSE,Expression\nn,1.5,0,1,0.1,0.1,x\n",
     "Run_Seed: expected an integer"),
    ("Layer,Run_Seed,Complexity_Rank,FLOPs,Train_MSE,Val_MSE,Expression\nn,1,0,1,0.1,0.1,x\nn,1,0,1,0.1,0.1,x+\n",
     "line 3: layer 'n': column 3: syntax error"),
    ("Complexity,Fitness,Equation 0,Equation 1\n1,0.1,x,x\n", "one tree per candidate"),
    ("Complexity,Fitness,Equation 0\n1,0.1,sin(x)\n", "unknown function 'sin'"),
    ("Complexity,Fitness,Equation 0\n", "no rows"),
])
def test_bad_csv(tmp_path, text, words):
    err = read_error(write(tmp_path, "front.csv", text), **({"layer": "n"} if text.startswith("Complexity") else {}))
    assert words in str(err), str(err)


def test_seed_not_in_file(tmp_path):
    text = "Layer,Run_Seed,Complexity_Rank,FLOPs,Train_MSE,Val_MSE,Expression\nn,1,0,1,0.1,0.1,x\nn,4,0,1,0.1,0.1,x\n"
    err = read_error(write(tmp_path, "p.csv", text), seed=3)
    assert "no rows with Run_Seed 3; seeds in the file: 1, 4" in err.message


def test_duplicate_layer_in_a_kozax_directory(tmp_path):
    (tmp_path / "norm").mkdir()
    (tmp_path / "norm" / "pareto_front.csv").write_text("Complexity,Fitness,Equation 0\n1,0.1,x\n")
    (tmp_path / "norm.csv").write_text("Complexity,Fitness,Equation 0\n1,0.1,x\n")
    assert "duplicate layer 'norm'" in read_error(tmp_path).message


def test_mapping_that_is_not_json():
    assert "not JSON data" in read_error({"n": object()}).message
