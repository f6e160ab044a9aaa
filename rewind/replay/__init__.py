"""Replay: match requests to recorded steps by fingerprint and play responses back."""
