"""Pure Python core of Treegate: states, the transition table, errors and values.

Nothing here does I/O or imports a framework; every other layer builds on it.
"""
