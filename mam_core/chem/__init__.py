"""Chemistry on top of the engine: molecule representations and RDKit helpers.

Nothing in the generic engine imports this package; it imports RDKit freely.
"""
