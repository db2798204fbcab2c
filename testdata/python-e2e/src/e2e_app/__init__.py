"""e2e-app: imports httpx, pydantic and numpy and prints what they compute."""

__version__ = "0.1.0"

GREETING = "hello from e2e-app"
