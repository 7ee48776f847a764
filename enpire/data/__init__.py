"""Trials as data: recorded trajectories (enpire.world.recording) read back, fetched from MLflow, exported as
robot-learning datasets (LeRobot v3 layout, plain parquet, robomimic-style HDF5) and replayed by id.
docs/data.md describes the files."""
