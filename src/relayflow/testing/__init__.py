"""Flow testing: the real engine on a private database with a virtual clock, seeded ids and
scripted channels (`FlowEnvironment`), and the `*.flowtest.json` runner behind `relayflow test`."""

from relayflow.testing.environment import FlowEnvironment, FlowTestError, Mocks

__all__ = ["FlowEnvironment", "FlowTestError", "Mocks"]
