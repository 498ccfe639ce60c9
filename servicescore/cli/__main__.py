"""``python -m servicescore.cli``: the same as the ``servicescore`` command."""

from servicescore.cli import main

raise SystemExit(main())
