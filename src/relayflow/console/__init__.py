"""The web console: server-side views of definitions and instances."""
