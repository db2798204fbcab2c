import os
import sys

from ledgerd import VERSION

if "--check" in sys.argv[1:]:
    print(f"{os.environ['APP_NAME']} {VERSION} on {os.environ['CHANNEL']}")
