"""Success from cameras: a small learned success detector, trained from labelled frames and frozen as a
verifier (`done.verifier: classifier`, docs/verifiers.md).

model.py    the network and its weights file (the frozen part: its sha256 joins done_sha256)
files.py    where a task's weights file is, without importing torch (the fingerprint reads it)
camera.py   frames of a station's camera at the detector's size and rate
judge.py    the hold rule on the detector's output (online and offline: one rule)
verifier.py the classifier verifier, with the state verifier as its shadow in simulation
collect.py  labelled frames from rollouts of the baseline and perturbed candidates
train.py    Lightning training, held-out metrics with intervals, the model card, MLflow
"""
