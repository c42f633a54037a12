"""OpenRDU host side: the ``openrdu`` command line, and (later) the Composition-of-Experts runtime."""
