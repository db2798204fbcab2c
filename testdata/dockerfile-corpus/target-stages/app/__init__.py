def status():
    import greeter

    return greeter.greet("ops")
