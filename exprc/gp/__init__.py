"""The GP stage: what produces the expressions `exprc compile` consumes (the paper's Sections 2.1-2.2).

    exprc extract  -> mappings.npz   extract.py (torch, timm), mappings.py (the file)
    exprc evolve   -> layers.json    runner.py (layers x seeds in processes, resumable) -> search.py (one Kozax run:
                                     operators.py, kozax_fitness.py, tree_eval.py, pareto.py, expr_text.py)
                                     -> layer_results.py (choice per layer, DyT baseline dyt.py, metrics.py)
                                     -> report.py (Table 1)
    exprc plot     -> figure         plot.py (Figure 6)

Nothing here is imported by `import exprc`; JAX and Kozax (the `gp` extra) load only inside a search.
"""
