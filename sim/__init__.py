"""OpenRDU simulation: toolchain discovery, the cocotb runner, stream models and testbenches."""
