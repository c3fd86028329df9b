"""Data: download + verify, parsers, prepared tables, variants, splits, synthetic generators."""
