"""OpenRDU hardware: Amaranth components of the dataflow fabric, and its presets."""

__version__ = "0.1.0"
