"""Gradient descent on a Transformer with residual connections (paper ``residual_convergence``)."""
