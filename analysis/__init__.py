"""Scaling studies from mpi-sgd run files: `python -m analysis report STUDY_DIR`.

Modules: `runs` reads the HDF5 files (the one place that knows their layout on this side),
`laws` holds the scaling arithmetic (speedup, efficiency, Karp-Flatt, Amdahl, Gustafson),
`phases` the per-phase breakdown and waiting, `commmodel` the alpha-beta-gamma model of the
allreduce algorithms, and `report` turns a study into tables, plots and report.md.
"""
