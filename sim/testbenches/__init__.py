"""cocotb testbench modules, run through :func:`sim.runner.run_cocotb`."""
