"""The push_t task: task.py (code), push_t.xml (arena), scripted.py (baseline), conf/ (its options)."""
