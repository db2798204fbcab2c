def run(): return "ok"
