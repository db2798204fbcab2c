import sys
import unittest

sys.path.insert(0, "/src")


class StatusTest(unittest.TestCase):
    def test_status_greets(self):
        import devcheck

        from app import status

        self.assertTrue(devcheck.ok())
        self.assertTrue(status().endswith("ops"))


if __name__ == "__main__":
    unittest.main()
