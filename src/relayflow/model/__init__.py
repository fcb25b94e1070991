"""The definition language: tolerant parsing, step models, timespans and validation."""
