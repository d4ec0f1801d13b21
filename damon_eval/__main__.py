import sys

from damon_eval.cli import main

sys.exit(main())
