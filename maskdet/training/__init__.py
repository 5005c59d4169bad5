"""Training and export on Ultralytics' engine: where a run starts, its settings, resume, ONNX."""
