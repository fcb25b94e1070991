"""A fake 8x8 (SMS, Chat Apps, Voice APIs and their webhooks) for relayflow's test-suite.

A real HTTP server in its own process (`python -m fake8x8`), checking requests the way
8x8 documents them and answering with 8x8's shapes, recording everything it receives, failing
on demand and posting 8x8-shaped webhooks back. A fifth site, "crm", is a generic JSON echo
standing for a customer's CRM behind an HttpRequest step, failing on demand the same way.
Drive it with `Fake8x8` (client.py); the control API is described in control.py.
"""

from fake8x8.client import DEFAULT_API_KEY, ControlError, Fake8x8, Urls, running_fake

__all__ = ["DEFAULT_API_KEY", "ControlError", "Fake8x8", "Urls", "running_fake"]
