import sys

import greeter
import tinyfmt

from inventory import STOCK

if "--summary" in sys.argv[1:]:
    empty = sorted(k for k, v in STOCK.items() if v == 0)
    print(tinyfmt.banner(greeter.greet("stock")))
    print(f"{len(STOCK)} items, out of stock: {', '.join(empty)}")
