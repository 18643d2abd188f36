import sys

from kdlab.students.cli import main

sys.exit(main())
