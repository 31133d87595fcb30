"""Package layout (the metadata is in pyproject.toml): data/ (the MOSES subset and the default
model) installs as the package ``mam_data``, so a non-editable ``pip install .`` has them too;
``mam_core.paths`` finds them."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["mam_core", "mam_core.*", "energies", "energies.*", "app",
                                    "app.*"])
    + ["mam_data"],
    package_dir={"mam_data": "data"},
    package_data={"mam_data": ["*.csv.gz", "models/*.pt", "README.md"]},
)
