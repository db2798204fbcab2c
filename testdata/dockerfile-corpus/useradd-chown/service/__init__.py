NAME = "accounts"
