"""`python -m exprc ...` is the `exprc` command."""

import sys

from .cli import main

sys.exit(main())
