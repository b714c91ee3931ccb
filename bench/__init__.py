"""The performance benchmark of issue 7: `python bench/run_all.py` writes bench/RESULTS.md."""
