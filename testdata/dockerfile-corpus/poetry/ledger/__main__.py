import greeter
import tinyfmt

from ledger import ENTRIES

balance = sum(amount for _, amount in ENTRIES)
print(tinyfmt.banner(greeter.greet("ledger")))
print(f"balanced: {balance == 0}")
