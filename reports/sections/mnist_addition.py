"""MNIST addition's section: the same as MNIST counting's (reports/sections/mnist_counting.py)."""
from reports.sections.mnist_counting import section

__all__ = ["section"]
