"""gridvm benchmarks: ``make bench`` (``python -m bench [NAME...]``)."""
