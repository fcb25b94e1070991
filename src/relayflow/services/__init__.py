"""Use cases shared by the REST API and the CLI; they own transactions, not HTTP or argv."""
