"""Use cases that the command line, the app and the benchmarks share: they compose the engine,
the chemistry and the energies, and never import Streamlit or argparse."""
