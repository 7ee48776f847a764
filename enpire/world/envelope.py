"""The safety envelope, enforced inside the station every control step (see world helper)."""
