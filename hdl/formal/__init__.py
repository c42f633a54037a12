"""Formal property harnesses and the list of property jobs that ``make formal`` runs.

Each job says in one line what a pass guarantees; :mod:`sim.formal` runs them with SymbiYosys.
"""

from .jobs import JOBS, job_names

__all__ = ["JOBS", "job_names"]
