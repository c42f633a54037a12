"""OpenRDU's application layer: the ``openrdu`` command line (:mod:`openrdu.cli`) and the flows it
runs (:mod:`openrdu.flows`: smoke, unit benches, kernel runs, bench, sweep, synthesis, formal,
lint, demo, CoE report).

This is the only package that orchestrates. It sits on top of the layers below and may import
all of them; none of them imports it::

    hdl  ->  compiler  ->  sim  ->  coe_host  ->  openrdu

(``import-linter`` checks the order: see ``[tool.importlinter]`` in ``pyproject.toml``.)
"""

from hdl import __version__

__all__ = ["__version__"]
