"""exprc's benchmark harness, behind `exprc bench` and `python -m bench` (see `cli.py`).

Bench modules (`elementwise`, `epilogue`, `vit`) yield cases; `harness` times them into rows; `results` writes
them to a JSON per run; `report` turns the newest GPU results into the README's tables; `plots` draws them.
`paper_runtime` is the paper's own way of running an expression, one eager torch op per IR node.
"""
