"""Analyses over recorded sessions (inspect summaries; diff, bisect and stats later)."""
