"""maskdet: label, check, train and run a face-mask detector built on Ultralytics YOLO."""

__version__ = "0.1.0"
