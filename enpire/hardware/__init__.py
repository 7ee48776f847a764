"""Hardware adapters: "the robot" apart from "the station" (docs/stations.md, "The adapter interface").

adapter.py (the protocol and its records), mujoco_adapter.py (the simulated robot), registry.py (which class
`robot.adapter` names), gates.py (station.confirm_motion, station.dry_run, compatibility), mirror.py (the
station's model as a mirror of a real arm, for physical adapters).
"""
