import sys

from kdlab.compare.cli import main

sys.exit(main())
