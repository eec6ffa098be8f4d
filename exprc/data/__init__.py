"""Small data sets that ship inside packages, for examples and tests (no download)."""
