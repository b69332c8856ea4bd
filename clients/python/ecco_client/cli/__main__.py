"""`python -m ecco_client.cli`, as the `ecco-client` command."""

import sys

from ecco_client.cli import main

sys.exit(main())
