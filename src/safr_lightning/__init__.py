"""safr-lightning: Superposition-Aware Feature Regularization with PyTorch Lightning."""

__version__ = "0.1.0"
