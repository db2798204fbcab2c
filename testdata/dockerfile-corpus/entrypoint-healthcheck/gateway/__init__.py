DEFAULT_TARGETS = ["collector-a:9200", "collector-b:9200"]
