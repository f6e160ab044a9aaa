"""Capture: mitmproxy flows in, plain ``Exchange`` records out.

mitmproxy types never leave this package (and the replay addon).
"""
