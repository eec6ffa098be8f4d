"""`python -m bench [kernels|epilogue|vit|all|report] [options]`: the same as `exprc bench ...`."""

import sys

from exprc.benchmarks.cli import main

sys.exit(main())
