"""Stations as network services: a station server (one SimStation, or later a real robot, behind FastAPI),
its typed protocol (specs/station_protocol.schema.json), the lease, and the dead-man watchdog. The envelope,
the controller's clamps, the estop flag and the frozen verifier run here, where the robot is; a runner sends
a candidate and a seed and gets a trial record back. See docs/stations.md.
"""
