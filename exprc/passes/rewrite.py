"""The rewrite engine: a table of rules applied bottom-up to a fixpoint.

A rule is a function `node -> Node | None` (None: does not apply) registered with the `# before -> after`
comment it implements. Because nodes are hash-consed, "nothing changed" is `new is old`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ExprcError
from ..ir import Node

MAX_REWRITES_PER_NODE = 64


@dataclass(frozen=True)
class Rule:
    name: str  # "c1*(c2*a) -> (c1*c2)*a"
    fn: Callable[[Node], "Node | None"]
    where: str  # file:line of the definition, for traces

    def __call__(self, node: Node) -> "Node | None":
        return self.fn(node)


@dataclass
class RuleTable:
    rules: list[Rule] = field(default_factory=list)

    def rule(self, name: str) -> Callable[[Callable[[Node], "Node | None"]], Callable[[Node], "Node | None"]]:
        def register(fn: Callable[[Node], "Node | None"]) -> Callable[[Node], "Node | None"]:
            src = inspect.getsourcefile(fn) or "?"
            where = f"{src.rsplit('/', 1)[-1]}:{fn.__code__.co_firstlineno}"
            self.rules.append(Rule(name, fn, where))
            return fn

        return register


def rewrite(root: Node, rules: list[Rule] | RuleTable, trace: list[str] | None = None) -> Node:
    """Rewrite every node bottom-up: rebuild it from rewritten sources, then apply rules until none fires."""
    table = rules.rules if isinstance(rules, RuleTable) else rules
    done: dict[int, Node] = {}
    keep: list[Node] = []  # keep originals alive so their ids stay unique during the walk

    def fixpoint(node: Node) -> Node:
        for _ in range(MAX_REWRITES_PER_NODE):
            for r in table:
                new = r(node)
                if new is not None and new is not node:
                    if trace is not None:
                        trace.append(f"{r.name}  [{r.where}]")
                    node = rebuild(new)
                    break
            else:
                return node
        raise ExprcError(f"rewrite did not reach a fixpoint after {MAX_REWRITES_PER_NODE} steps at {node.op.name}")

    def rebuild(node: Node) -> Node:
        # sources of a freshly built node may themselves be rewritable (a rule may build new subtrees)
        for n in node.toposort(skip=lambda m: id(m) in done):
            keep.append(n)
            src = tuple(done[id(s)] for s in n.src)
            m = n if src == n.src else n.replace(src=src)
            done[id(n)] = res = fixpoint(m)
            if m is not n:
                keep.append(m)
                done.setdefault(id(m), res)
        return done[id(node)]

    return rebuild(root)
