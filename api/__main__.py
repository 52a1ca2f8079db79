"""``python -m api`` runs the ``saksi`` command."""

from api.cli import main

raise SystemExit(main())
