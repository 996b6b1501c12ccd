import sys

from ML.cli import main

sys.exit(main())
