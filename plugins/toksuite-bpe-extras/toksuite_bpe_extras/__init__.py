"""Image-BPE variants for toksuite: snake and Hilbert scan orders, as a third party writes them."""
