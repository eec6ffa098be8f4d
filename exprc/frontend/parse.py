"""Expression text -> IR, through the standard library's `ast` and a strict whitelist.

Nothing here evaluates user text: `ast.parse` only builds a syntax tree, and every node kind that is not
explicitly handled below is an error that points at it.
"""

from __future__ import annotations

import ast
import math

from ..errors import ExprcError, Span
from ..ir import MAX_POW, Node, Op, clip, const, var
from .functions import CLIP, DEFAULT_CLIP, VARIABLES, known_names, lookup

MAX_LENGTH = 20_000  # characters in one expression
MAX_DEPTH = 200  # nesting depth of the syntax tree


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
        end = self._col(lineno, getattr(node, "end_col_offset", 0)) if end_line == lineno else len(self.lines[lineno - 1])
        return Span(lineno, start, max(end, start + 1))

    def error(self, msg: str, node: ast.AST) -> ExprcError:
        return ExprcError(msg, self.span(node), self.text)

    # -- constants -----------------------------------------------------------------------------
    def number(self, node: ast.AST, what: str) -> float:
        """A constant expression (a number, possibly signed or a product of numbers) for clip bounds."""
        ir = self.expr(node, 0)
        from ..passes.fold_constants import fold_constants

        ir = fold_constants(ir)
        if not ir.is_const:
            raise self.error(f"{what} must be a number", node)
        return ir.value

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
        kind = type(node).__name__
        raise self.error(f"unsupported syntax ({kind}): expected a number, x, + - * / **, or a function call", node)

    def binop(self, node: ast.BinOp, d: int) -> Node:
        ops = {ast.Add: Op.ADD, ast.Sub: Op.SUB, ast.Mult: Op.MUL, ast.Div: Op.DIV}
        if isinstance(node.op, ast.Pow):
            base = self.expr(node.left, d)
            n = self.exponent(node.right)
            return Node(Op.POW, src=(base,), arg=n)
        op = ops.get(type(node.op))
        if op is None:
            sym = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|",
                   ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}.get(type(node.op), type(node.op).__name__)
            raise self.error(f"unsupported operator {sym!r}: expected + - * / or **", node)
        return Node(op, src=(self.expr(node.left, d), self.expr(node.right, d)))

    def exponent(self, node: ast.AST) -> int:
        sign = 1
        inner = node
        if isinstance(inner, ast.UnaryOp) and isinstance(inner.op, (ast.USub, ast.UAdd)):
            sign = -1 if isinstance(inner.op, ast.USub) else 1
            inner = inner.operand
        if not isinstance(inner, ast.Constant) or isinstance(inner.value, bool) or not isinstance(inner.value, (int, float)):
            raise self.error("the exponent of ** must be a literal integer", node)
        v = inner.value * sign
        if isinstance(v, float) and not v.is_integer():
            raise self.error(f"the exponent of ** must be an integer, found {v!r}", node)
        if not 0 <= v <= MAX_POW:
            raise self.error(f"the exponent of ** must be an integer in 0..{MAX_POW}, found {v!r}", node)
        return int(v)

    def call(self, node: ast.Call, d: int) -> Node:
        if not isinstance(node.func, ast.Name):
            raise self.error("only plain function names can be called", node.func)
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
    if not text.strip():
        raise ExprcError("empty expression")
    if len(text) > MAX_LENGTH:
        raise ExprcError(f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if "\x00" in text:
        raise ExprcError("expression contains a NUL character", Span(1, text.index("\x00"), text.index("\x00") + 1), text)
    try:
        tree = ast.parse(text.strip("\n"), mode="eval")
    except SyntaxError as e:
        line = e.lineno or 1
        col = max((e.offset or 1) - 1, 0)
        raise ExprcError(f"syntax error: {e.msg}", Span(line, col, col + 1), text.strip("\n")) from None
    except (RecursionError, MemoryError):
        raise ExprcError(f"expression nested too deeply to parse (limit {MAX_DEPTH} levels)") from None
    p = _Parser(text.strip("\n"), clip_bounds)
    return p.expr(tree.body, 0)
