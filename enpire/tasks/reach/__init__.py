"""The reach task: task.py (code), reach.xml (arena), scripted.py (baseline), conf/ (its options)."""
