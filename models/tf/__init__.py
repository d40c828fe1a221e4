"""TensorFlow (Keras 3) implementations of the units, networks and training loops."""
