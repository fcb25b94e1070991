"""relayflow's benchmark suite (issue 5): `make bench` (quick) or `make bench FULL=1`.

Everything here runs real processes on loopback: relayflow, the fake 8x8 (with a bench-only
timing log), the load generator and the DBOS baseline. See bench/RESULTS.md for how to read it.
"""
