"""Image-BPE variants for toksuite: snake and Hilbert scan orders, k-means palette symbols."""
