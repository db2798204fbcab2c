from app import status

print(status())
