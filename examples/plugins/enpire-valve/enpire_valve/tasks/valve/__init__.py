"""The valve task: task.py (the Python a yaml cannot say), valve.xml, scripted.py, conf/ (its options)."""
