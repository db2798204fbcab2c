import greeter
import tinyfmt

from report import TITLE

print(tinyfmt.banner(TITLE))
print(greeter.greet("team"))
