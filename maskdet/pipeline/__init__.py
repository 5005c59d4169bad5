"""The per-frame step (Pipeline, built from maskdet.settings.Settings) and detect.py's runner.

Layering: maskdet.pipeline imports maskdet.inference and maskdet.monitoring; they never import it.
Serving, the data tools, the scripts and camera workers import it.
"""
