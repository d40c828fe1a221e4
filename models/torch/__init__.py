"""PyTorch implementations of the units, networks and training loops."""
