"""One module per workload; each exposes `run(deployment, settings) -> dict` of figures."""
