"""`python -m enpire.ctl`: the operator's command line (kept at this name: README, docs, conf and specs give
it to users). The code is enpire.ops.ctl."""

import sys

from enpire.ops.ctl import main

if __name__ == "__main__":
    sys.exit(main())
