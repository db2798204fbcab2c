ENTRIES = [("cash", 100), ("revenue", -100)]
