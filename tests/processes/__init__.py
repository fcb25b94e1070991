"""Slow process-level suites: real relayflow processes, SIGKILLed and SIGTERMed."""
