"""Adapters to the outside world: messaging providers (sandbox, 8x8) and user-defined HTTP.
Channels know nothing about workflows."""
