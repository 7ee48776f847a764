"""The lift task: task.py (code), lift.xml (arena), scripted.py (baseline), conf/ (its options)."""
