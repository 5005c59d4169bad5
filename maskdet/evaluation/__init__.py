"""Evaluation helpers beyond Ultralytics' validator: honest test figures (test photos with twins left out)."""
