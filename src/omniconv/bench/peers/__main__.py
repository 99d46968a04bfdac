"""``python -m peers SPEC.json``: run one peer of ``omniconv bench`` (see ``_protocol``)."""

import sys

from ._protocol import main

raise SystemExit(main(sys.argv[1:]))
