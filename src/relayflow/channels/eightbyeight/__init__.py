"""The real 8x8 provider: outbound SMS, Chat Apps and Voice connectors and webhook parsing."""
