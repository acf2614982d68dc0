"""``python -m filepipe.ops``: the operator commands on their own."""

import sys

from filepipe.ops.cli import main

sys.exit(main())
