"""`python -m bench`: the entry point of exprc's benchmark harness (the code is in `exprc.benchmarks`).

GPU results are written to `bench/results/`; a --quick or CPU smoke run writes to a temporary directory.
"""
