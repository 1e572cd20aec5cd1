"""The PyTorch modules: layers, stacks, the autoencoders and their PCA start."""
