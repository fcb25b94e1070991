"""The durable execution engine: plans, steps, the runner, workers and the event router."""
