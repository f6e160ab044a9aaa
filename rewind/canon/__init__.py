"""Canon: redaction, provider knowledge, canonical JSON and the request fingerprint.

Pure functions only: no I/O, no global state.
"""
