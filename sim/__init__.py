"""OpenRDU verification: toolchain discovery, the cocotb runner with atomic shared builds, stream
models (source, sink, monitor), DRAM device models, job runners and testbenches.

Flows that use these (synthesis, formal, bench, sweep) live in :mod:`openrdu.flows`.
"""
