"""``python -m hdl.pcu [PRESET]`` prints the PCU configuration register's fields."""

from .config import main

raise SystemExit(main())
