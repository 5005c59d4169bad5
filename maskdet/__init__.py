"""maskdet: label, check, train and run a face-mask detector built on Ultralytics YOLO."""

__version__ = "0.1.0"

import os as _os

# Nothing is installed at run time (the project's rule): Ultralytics would pip-install what a check finds missing
# (a HEIC plugin the first time Pillow cannot identify a file, export tools...). Off unless a user turns it on.
_os.environ.setdefault("YOLO_AUTOINSTALL", "false")
