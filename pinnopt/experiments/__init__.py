"""Benchmark engines: experiments built on the core, never imported by it.

- ``vmapped``: many independent runs of one optimizer as one compiled ``vmap`` of a
  ``lax.scan``, and the table that compares optimizers on a problem (``pinnopt bench``);
- ``comparison``: configs of the full solve loop (balancers, constraint methods) run over
  seeds, with tables of spreads (``comparison_tables``);
- ``pde_comparisons``: the PDE benchmark's two comparisons (convection, pde_toy) and budgets.

Their command line is ``pinnopt.cli.bench``; the scripts in ``benchmarks/`` use them too.
Submodules are imported by name (``from pinnopt.experiments import vmapped``), so importing
this package loads nothing else.
"""
