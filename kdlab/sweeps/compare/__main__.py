import sys

from kdlab.sweeps.compare.cli import main

sys.exit(main())
