import sys

from tools.demo.runner import main

sys.exit(main())
