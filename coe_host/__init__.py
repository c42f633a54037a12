"""The Composition-of-Experts runtime: expert registry, three-tier memory, residency and switching,
router, node model, and the golden and RTL backends behind one interface (:mod:`coe_host.backend`).

No command-line code lives here: ``openrdu coe`` is :mod:`openrdu.cli.coe`, and the report it
writes is :mod:`openrdu.flows.coe_report`.
"""
