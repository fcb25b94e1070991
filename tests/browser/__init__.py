"""Real-browser tests: Debian's headless Chromium, driven by Playwright, against relayflow serve."""
