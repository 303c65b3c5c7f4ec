import sys

from xmarl.cli import main

sys.exit(main())
