"""`make bench`: Treegate against a hand-written ceiling server, under wrk (README: Benchmarks)."""
