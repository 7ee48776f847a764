"""The drawer task: task.py (code), drawer.xml (arena), scripted.py (baseline), conf/ (its options)."""
