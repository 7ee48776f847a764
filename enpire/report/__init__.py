"""Reports comparing iterations and sessions, read from MLflow alone (`python -m enpire.report`)."""
