"""The composition root: app factory, HTTP concerns, settings and the CLI.

Everything is wired here; no other layer imports this package.
"""
