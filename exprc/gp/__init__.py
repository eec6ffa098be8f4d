"""The GP stage: what produces the expressions `exprc compile` consumes (the paper's Sections 2.1-2.2).

    exprc extract  -> mappings.npz   extract.py (torch, timm), mappings.py (the file)
    exprc evolve   -> layers.json    runner.py (plan, resumable output, array tasks) -> executors.py (in process,
                                     worker processes, or batched) -> search.py (one or many searches; jax_setup.py)
                                     -> kozax_engine.py (Kozax's GeneticProgramming with exprc's overrides:
                                     operators.py, pareto.py, expr_text.py) -> search_loop.py (the generation loop)
                                     -> population_fitness.py (fitness and constant optimization) -> tree_grad.py
                                     (occupied-rows evaluator, hand-written gradient); engine legacy: tree_eval.py,
                                     kozax_fitness.py
                                     -> layer_results.py (choice per layer, DyT baseline dyt.py, metrics.py)
                                     -> report.py (Table 1); compare.py (two outputs, paired: bench/gp_quality.py)
    exprc plot     -> figure         plot.py (Figure 6)

Nothing here is imported by `import exprc`; JAX and Kozax (the `gp` extra) load only inside a search.
"""
