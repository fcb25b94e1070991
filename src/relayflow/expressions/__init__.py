"""`{{ JavaScript }}` expressions: templates, and (with the engine) the jail."""
