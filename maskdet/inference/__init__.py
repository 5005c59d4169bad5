"""Detection at run time: sources -> detector -> annotator -> sinks, one Detections record between them."""
