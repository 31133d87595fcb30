"""``python -m mam_core.cli``: the ``mam`` command (also what ``torchrun -m`` launches)."""

from . import main

raise SystemExit(main())
