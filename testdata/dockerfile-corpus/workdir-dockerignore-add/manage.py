import configparser
import os
import pathlib
import sys

cfg = configparser.ConfigParser()
cfg.read(os.environ["WEBAPP_SETTINGS"])
static = pathlib.Path(cfg["webapp"]["static_root"])

if sys.argv[1:] == ["collect"]:
    for p in sorted(static.rglob("*")):
        if p.is_file():
            print(p.relative_to(static))
elif sys.argv[1:] == ["serve"]:
    from webapp import app

    app.run()
