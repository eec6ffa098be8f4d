"""Expression text -> IR, through the standard library's `ast` and a strict whitelist.

Nothing here evaluates user text: `ast.parse` only builds a syntax tree, and every node kind that is not
explicitly handled below is an error that points at it.
"""

from __future__ import annotations

import ast
import math

from ..errors import ExprcError, Span
from ..ir import MAX_POW, Node, Op, clip, const, evaluate, var
from .functions import CLIP, DEFAULT_CLIP, VARIABLES, known_names, lookup

MAX_LENGTH = 20_000  # characters in one expression
MAX_DEPTH = 200  # nesting depth of the syntax tree
F32_ZERO = 2.0 ** -150  # half the smallest f32 subnormal: a value of at most this magnitude rounds to 0 in f32

_BINARY_OPS = {ast.Add: Op.ADD, ast.Sub: Op.SUB, ast.Mult: Op.MUL, ast.Div: Op.DIV}
_OTHER_OPERATORS = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|",
                    ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}
# what to call the syntax we refuse, in error messages
_SYNTAX_NAMES = {
    ast.Attribute: "attribute access", ast.Subscript: "subscript", ast.Lambda: "lambda", ast.Compare: "comparison",
    ast.BoolOp: "and/or", ast.IfExp: "conditional expression", ast.NamedExpr: "assignment expression",
    ast.Tuple: "tuple", ast.List: "list", ast.Dict: "dict", ast.Set: "set", ast.JoinedStr: "f-string",
    ast.ListComp: "comprehension", ast.SetComp: "comprehension", ast.DictComp: "comprehension",
    ast.GeneratorExp: "generator expression", ast.Starred: "starred expression", ast.Slice: "slice",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
}


class _Parser:
    def __init__(self, text: str, clip_bounds: tuple[float, float]):
        self.text = text
        self.lines = text.split("\n")
        self.clip_bounds = clip_bounds

    # -- positions -----------------------------------------------------------------------------
    def _col(self, lineno: int, byte_col: int) -> int:
        line = self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""
        return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))

    def span(self, node: ast.AST) -> Span:
        lineno = getattr(node, "lineno", 1)
        start = self._col(lineno, getattr(node, "col_offset", 0))
        end_line = getattr(node, "end_lineno", lineno)
        if end_line == lineno:
            end = self._col(lineno, getattr(node, "end_col_offset", 0))
        else:
            end = len(self.lines[lineno - 1])
        return Span(lineno, start, max(end, start + 1))

    def error(self, msg: str, node: ast.AST) -> ExprcError:
        return ExprcError(msg, self.span(node), self.text)

    # -- constants -----------------------------------------------------------------------------
    def number(self, node: ast.AST, what: str) -> float:
        """A constant expression (a number, possibly signed or a product of numbers) for clip bounds."""
        ir = self.expr(node, 0)
        if any(n.op is Op.INPUT for n in ir.toposort()):
            raise self.error(f"{what} must be a number, found an expression in x", node)
        value = float(evaluate(ir, 0.0))
        if not math.isfinite(value):
            raise self.error(f"{what} is {value!r}, not a finite number", node)
        return value

    # -- expressions ---------------------------------------------------------------------------
    def expr(self, node: ast.AST, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.error(f"expression nested deeper than {MAX_DEPTH} levels", node)
        d = depth + 1
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise self.error(f"expected a number, found {type(v).__name__} {v!r}"[:120], node)
            try:
                f = float(v)
            except OverflowError:
                f = math.inf
            if not math.isfinite(f):
                raise self.error(f"constant {ast.get_source_segment(self.text, node) or v} is not a finite float", node)
            return const(f)
        if isinstance(node, ast.Name):
            if node.id in VARIABLES:
                return var("x")
            if lookup(node.id) is not None or node.id == CLIP:
                raise self.error(f"function {node.id!r} used without arguments", node)
            raise self.error(f"unknown name {node.id!r}: the only variable is x (or x0)", node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return self.expr(node.operand, d)
            if isinstance(node.op, ast.USub):
                inner = self.expr(node.operand, d)
                return const(-inner.value) if inner.is_const else Node(Op.NEG, src=(inner,))
            raise self.error(f"unsupported operator {type(node.op).__name__}", node)
        if isinstance(node, ast.BinOp):
            return self.binop(node, d)
        if isinstance(node, ast.Call):
            return self.call(node, d)
        kind = _SYNTAX_NAMES.get(type(node), type(node).__name__)
        found = ast.get_source_segment(self.text, node) or ""
        found = f" {found!r}" if found and len(found) <= 60 else ""
        raise self.error(f"unsupported syntax: {kind}{found}; expected a number, x, + - * / **, or a function call",
                         node)

    def binop(self, node: ast.BinOp, d: int) -> Node:
        if isinstance(node.op, ast.Pow):
            base = self.expr(node.left, d)
            n = self.exponent(node.right)
            if n < 0:  # sympy (Kozax's printer) writes 1/a**2 as a**(-2)
                self.check_divisor(base, node.left)
                return Node(Op.DIV, src=(const(1.0), base if n == -1 else Node(Op.POW, src=(base,), arg=-n)))
            return Node(Op.POW, src=(base,), arg=n)
        # `a + b + c + ...` nests on the left; walk that spine iteratively so a long flat sum is not "deep"
        spine: list[ast.BinOp] = []
        while isinstance(node, ast.BinOp) and not isinstance(node.op, ast.Pow):
            spine.append(node)
            node = node.left
        acc = self.expr(node, d)
        for b in reversed(spine):
            op = _BINARY_OPS.get(type(b.op))
            if op is None:
                sym = _OTHER_OPERATORS.get(type(b.op), type(b.op).__name__)
                raise self.error(f"unsupported operator {sym!r}: expected + - * / or **", b)
            right = self.expr(b.right, d)
            if op is Op.DIV:
                self.check_divisor(right, b.right)
            acc = Node(op, src=(acc, right))
        return acc

    def check_divisor(self, ir: Node, node: ast.AST) -> None:
        """A divisor that is a constant expression equal to 0 (or -0) is an error: the kernel would return inf.

        The constant is computed as constant folding computes it (float64, `evaluate`), not by evaluating text."""
        if any(n.op is Op.INPUT for n in ir.toposort()):
            return
        value = float(evaluate(ir, 0.0))
        if value == 0.0 or abs(value) <= F32_ZERO:
            seg = ast.get_source_segment(self.text, node) or ""
            what = f" {seg!r}" if seg and len(seg) <= 60 else ""
            why = "a constant equal to 0" if value == 0.0 else f"{value!r}, 0 in float32 (the kernels' arithmetic)"
            raise self.error(f"division by zero: the divisor{what} is {why}", node)

    def exponent(self, node: ast.AST) -> int:
        sign = 1
        inner = node
        if isinstance(inner, ast.UnaryOp) and isinstance(inner.op, (ast.USub, ast.UAdd)):
            sign = -1 if isinstance(inner.op, ast.USub) else 1
            inner = inner.operand
        value = inner.value if isinstance(inner, ast.Constant) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error("the exponent of ** must be a literal integer", node)
        v = inner.value * sign
        if isinstance(v, float) and not v.is_integer():
            raise self.error(f"the exponent of ** must be an integer, found {v!r}", node)
        if not -MAX_POW <= v <= MAX_POW:
            raise self.error(f"the exponent of ** must be an integer in -{MAX_POW}..{MAX_POW}, found {v!r}", node)
        return int(v)

    def call(self, node: ast.Call, d: int) -> Node:
        if not isinstance(node.func, ast.Name):
            seg = (ast.get_source_segment(self.text, node.func) or type(node.func).__name__)[:60]
            raise self.error(f"cannot call {seg!r}: only plain function names can be called", node.func)
        if node.keywords:
            raise self.error("keyword arguments are not supported", node.keywords[0].value)
        name, args = node.func.id, node.args
        if any(isinstance(a, ast.Starred) for a in args):
            raise self.error("*args is not supported", node)
        if name == CLIP:
            if len(args) == 1:
                lo, hi = self.clip_bounds
            elif len(args) == 3:
                lo, hi = self.number(args[1], "clip's lower bound"), self.number(args[2], "clip's upper bound")
                if lo > hi:
                    raise self.error(f"clip bounds out of order: {lo!r} > {hi!r}", node)
            else:
                raise self.error(f"clip takes 1 or 3 arguments (a or a, lo, hi), found {len(args)}", node)
            return clip(self.expr(args[0], d), lo, hi)
        fn = lookup(name)
        if fn is None:
            raise self.error(f"unknown function {name!r}; known: {', '.join(known_names())}", node.func)
        if len(args) != 1:
            raise self.error(f"{name} takes 1 argument, found {len(args)}", node)
        return fn.build(self.expr(args[0], d))


def parse(text: str, clip_bounds: tuple[float, float] = DEFAULT_CLIP) -> Node:
    """Parse one expression in x into IR. Raises `ExprcError` pointing at the offending text."""
    if not isinstance(text, str):
        raise ExprcError(f"expected an expression string, found {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExprcError(f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if "\x00" in text:
        at = text.index("\x00")
        raise ExprcError("expression contains a NUL character", Span(1, at, at + 1), text)
    lo, hi = clip_bounds
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ExprcError(f"clip bounds must be finite numbers with lo < hi, found {clip_bounds!r}")
    source = text.strip()  # leading blanks would be an "unexpected indent"
    if not source:
        raise ExprcError("empty expression")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as e:
        raise _syntax_error(e, source) from None
    except (RecursionError, MemoryError):
        raise ExprcError("expression nested too deeply to parse") from None
    return _Parser(source, (float(lo), float(hi))).expr(tree.body, 0)


def _syntax_error(e: SyntaxError, source: str) -> ExprcError:
    lines = source.split("\n")
    line = min(max(e.lineno or 1, 1), len(lines))
    width = len(lines[line - 1])
    start = (e.offset or 0) - 1  # SyntaxError offsets are 1-based characters; 0 means "at the end"
    msg = (e.msg or "invalid syntax").split(" - ")[0]
    if not 0 <= start < width:
        start = width
        if msg == "invalid syntax":
            msg = "unexpected end of expression"
    end = start + 1
    if e.end_lineno == line and e.end_offset and e.end_offset - 1 > start:
        end = min(e.end_offset - 1, width)
    return ExprcError(f"syntax error: {msg}", Span(line, start, end), source)
