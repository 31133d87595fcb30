"""The generic engine: marginalization models over any discrete sequences (lattices, token data,
molecules alike).

It imports torch (and numpy) only, never :mod:`mam_core.chem`, :mod:`energies` or RDKit; a test
(``tests/test_layering.py``) imports every module here with those blocked.
"""
