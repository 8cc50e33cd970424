import sys

from safr_lightning.search.report import main

sys.exit(main())
