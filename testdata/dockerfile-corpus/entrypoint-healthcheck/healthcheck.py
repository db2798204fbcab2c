#!/usr/bin/env python3
"""Exit 0 when the gateway answers on its port, 1 otherwise."""
import os
import socket
import sys

port = int(os.environ.get("GATEWAY_PORT", "9100"))
if "--self-test" in sys.argv[1:]:
    print(f"would probe 127.0.0.1:{port}")
    sys.exit(0)
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
except OSError:
    sys.exit(1)
