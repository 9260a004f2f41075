"""Builds the module and calls `greet` once on the local Weft host (`weft`
on PATH, or the binary named by WEFT): `python -m unittest`."""

import json
import os
import subprocess
import unittest


class GreetTest(unittest.TestCase):
    def test_greet_answers(self) -> None:
        out = subprocess.run(
            [os.environ.get("WEFT", "weft"), "build", "--run", "--function", "greet",
             "--input", '{"name":"Ada"}'],
            check=True, capture_output=True, text=True,
        ).stdout
        self.assertEqual(json.loads(out)["greeting"], "Hello, Ada! (RPC attempt 1)")


if __name__ == "__main__":
    unittest.main()
