"""pinnopt.pde: what a PDE problem needs, in the open.

- fields (``fields``): ``scalar_field(module)`` turns a one-output network into
  u(params, x) -> () for one point x (d,); ``mlp_field(d, ...)`` builds one with its init;
  ``values(f, points)`` evaluates a scalar function of one point at (N, d) points -> (N,).
- operators (``operators``): ``derivative``, ``time_derivative`` (column 0), ``gradient``,
  ``second_derivative``, ``laplacian`` (all or chosen axes) of a scalar function of one point
  at (N, d) points, in forward mode (nested ``jax.jvp``) by default; ``method="jet"`` (Taylor
  mode) and ``method="reverse"`` (``jax.grad`` / ``jax.hessian``, the reference) give the same
  numbers. The module docstring says why forward mode, with the measurements.
- ``relative_l2(pred, ref)``: ||pred - ref||_2 / ||ref||_2.
- samplers (``sampling``): ``in_box``, ``on_box`` (uniform over all faces by area),
  ``in_disk`` (uniform by area), ``on_circle``; key-first and jittable.

A Poisson residual -Laplace(u) = s with a network::

    init, u = pinnopt.pde.mlp_field(2, width=32, depth=3)
    def residual(params, points):
        f = functools.partial(u, params)
        return -pinnopt.pde.laplacian(f, points) - s(points)
"""
from pinnopt.pde.fields import Field, mlp_field, scalar_field, values
from pinnopt.pde.metrics import relative_l2
from pinnopt.pde.operators import (METHODS, derivative, gradient, laplacian, second_derivative,
                                   time_derivative)
from pinnopt.pde.sampling import in_box, in_disk, on_box, on_circle

__all__ = ["Field", "METHODS", "derivative", "gradient", "in_box", "in_disk", "laplacian", "mlp_field",
           "on_box", "on_circle", "relative_l2", "scalar_field", "second_derivative", "time_derivative",
           "values"]
