import sys

from dopa_rl.cli import main

sys.exit(main())
