"""Shipped data (the MOSES subset and the default model), installed as the package ``mam_data``;
find it with :func:`mam_core.paths.data_dir`."""
