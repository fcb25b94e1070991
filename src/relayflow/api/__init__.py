"""The HTTP API: the 8x8-compatible REST surface plus relayflow's extensions."""
