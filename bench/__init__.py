"""`python -m bench`: the entry point of exprc's benchmark harness (the code is in `exprc.benchmarks`).

Results are written to `bench/results/`.
"""
