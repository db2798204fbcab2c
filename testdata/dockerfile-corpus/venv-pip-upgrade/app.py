import greeter
import tinyfmt

print(tinyfmt.banner(greeter.greet("world")))
print("greeter", greeter.__version__)
