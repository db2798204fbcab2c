import sys

import httpx
import numpy

from e2e_app import GREETING, __version__
from e2e_app.model import Reading


def main() -> int:
    total = int(numpy.arange(100).sum())
    reading = Reading(name="e2e", values=[1, 2, 3])
    url = httpx.URL("http://127.0.0.1:8000/items").copy_merge_params({"id": 7})
    print(GREETING)
    print(f"e2e-app {__version__} on python {sys.version_info.major}.{sys.version_info.minor}")
    print(f"numpy sum: {total}")
    print(f"model: {reading.model_dump_json()}")
    print(f"url: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
