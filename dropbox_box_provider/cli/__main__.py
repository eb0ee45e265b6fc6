"""``python -m dropbox_box_provider.cli``: the same as the ``dropbox-box-auth`` console script."""

import sys

from dropbox_box_provider.cli.main import main

sys.exit(main())
