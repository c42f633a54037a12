"""The reconfigurable dataflow network (RDN): routing graph, switches, CRC.

* :mod:`.graph` — :class:`FabricGraph`, the one routing graph of a preset; :func:`find_route`
  (one stream by shortest path).
* :mod:`.router` — :func:`route_nets`: all of a kernel's streams together, negotiated congestion.
* :mod:`.switch` — :class:`Switch`, generated from the graph; its configuration encoder.
* :mod:`.crc` — CRC-32 over configuration words (Python and hardware).
"""

from .graph import ARGUMENTS, FABRICS, UNIT_PINS, FabricGraph, Pin, RouteError, Site, find_route
from .router import Net, route_nets
from .switch import LinkSignature, Switch, encode_switch, fabric_shape, port_member, switch_layout

__all__ = ["ARGUMENTS", "FABRICS", "FabricGraph", "Pin", "RouteError", "Site", "UNIT_PINS", "find_route",
           "Net", "route_nets", "LinkSignature", "Switch", "encode_switch", "fabric_shape", "port_member",
           "switch_layout"]
