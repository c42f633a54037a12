"""Formal property harnesses and the list of property jobs that ``make formal`` runs.

Each job says in one line what a pass guarantees; :mod:`openrdu.flows.formal` runs them with SymbiYosys.
"""

from .job import FormalJob
from .jobs import JOBS, job_names

__all__ = ["JOBS", "FormalJob", "job_names"]
