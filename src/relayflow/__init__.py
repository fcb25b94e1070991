"""relayflow: self-hosted workflow automation for messaging, 8x8 Automation API compatible."""

__version__ = "0.1.0"
