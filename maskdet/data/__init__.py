"""Growing the dataset: pre-label new photos with the model, review them in the best order, merge them in."""
