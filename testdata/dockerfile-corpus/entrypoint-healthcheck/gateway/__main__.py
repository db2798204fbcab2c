import os
import sys

from gateway import DEFAULT_TARGETS

if "--dry-run" in sys.argv[1:]:
    port = os.environ["GATEWAY_PORT"]
    print(f"gateway on :{port} -> {', '.join(DEFAULT_TARGETS)}")
