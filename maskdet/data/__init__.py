"""The dataset: import labels (Pascal VOC, YOLO), read and check label files, split; and grow it:
pre-label new photos with the model, review them in the best order, merge them in."""
