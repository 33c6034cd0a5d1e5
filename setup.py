"""Packaging: the repository's top-level folders install under the ``minewatch`` namespace.

``ingest/``, ``alarms/``, ``api/`` and ``simulators/`` stay where the project laid them out,
but install as ``minewatch.ingest``, ``minewatch.alarms``, ``minewatch.api`` and
``minewatch.simulators``, so nothing generic lands in site-packages. Everything else is in
pyproject.toml.
"""

from setuptools import find_packages, setup

LAYERS = ("ingest", "alarms", "api", "simulators")

package_dir = {"minewatch": "minewatch"}
packages = ["minewatch", *(f"minewatch.{p}" for p in find_packages("minewatch"))]
for folder in LAYERS:
    package_dir[f"minewatch.{folder}"] = folder
    packages += [f"minewatch.{folder}", *(f"minewatch.{folder}.{p}" for p in find_packages(folder))]

setup(packages=packages, package_dir=package_dir)
