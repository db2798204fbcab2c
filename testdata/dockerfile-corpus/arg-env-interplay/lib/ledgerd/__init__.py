import os

VERSION = os.environ.get("APP_VERSION", "unknown")
