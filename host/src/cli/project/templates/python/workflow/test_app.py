"""Builds the workflow and runs it once on the local Weft host (`weft` on
PATH, or the binary named by WEFT): `python -m unittest`."""

import json
import os
import subprocess
import unittest


class HelloTest(unittest.TestCase):
    def test_greets_by_name(self) -> None:
        out = subprocess.run(
            [os.environ.get("WEFT", "weft"), "build", "--run", "--json", "--input", '{"name":"Ada"}'],
            check=True, capture_output=True, text=True,
        ).stdout
        self.assertEqual(json.loads(out)["run"]["output"]["greeting"], "Hello, Ada!")


if __name__ == "__main__":
    unittest.main()
