def run():
    print("serving /health on :8000")
