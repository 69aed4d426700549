"""`python -m fabric_server` is `fabric-server`."""

import sys

from fabric_server.cli import main

sys.exit(main())
