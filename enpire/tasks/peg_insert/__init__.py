"""The peg_insert task: task.py (code), peg_insert.xml (arena), scripted.py (baseline), conf/ (its options)."""
