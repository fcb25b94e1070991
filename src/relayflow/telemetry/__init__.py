"""What a process tells its operator: Prometheus metrics and OpenTelemetry traces."""
