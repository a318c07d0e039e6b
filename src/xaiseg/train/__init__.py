"""Training: one loop shared by the classifier and the segmenter."""
