"""``python -m openrdu ...`` is the ``openrdu`` command."""

from .cli import main

raise SystemExit(main())
