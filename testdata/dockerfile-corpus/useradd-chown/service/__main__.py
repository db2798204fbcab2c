import configparser
import getpass

from service import NAME

cfg = configparser.ConfigParser()
cfg.read("/etc/app/settings.ini")
print(f"{NAME} as {getpass.getuser()} on port {cfg['server']['port']}")
