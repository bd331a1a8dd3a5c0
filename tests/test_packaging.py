"""The package metadata and the files that ship with it agree: setup.cfg's licence is the LICENSE file's."""
import re
from pathlib import Path

from setuptools.config.setupcfg import read_configuration

ROOT = Path(__file__).resolve().parents[1]

# The operative sentences of the MIT licence (SPDX "MIT", https://spdx.org/licenses/MIT.html), in order.
MIT_CLAUSES = (
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated "
    "documentation files (the \"Software\"), to deal in the Software without restriction, including without "
    "limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the "
    "Software, and to permit persons to whom the Software is furnished to do so, subject to the following "
    "conditions:",
    "The above copyright notice and this permission notice shall be included in all copies or substantial portions "
    "of the Software.",
    "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED "
    "TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL "
    "THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF "
    "CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER "
    "DEALINGS IN THE SOFTWARE.",
)


def test_license_file_is_the_mit_licence_that_setup_cfg_declares():
    meta = read_configuration(ROOT / "setup.cfg")["metadata"]
    assert meta["license"] == "MIT"
    assert [Path(p).name for p in meta["license_files"]] == ["LICENSE"]   # shipped in sdists and wheels
    text = (ROOT / "LICENSE").read_text()
    assert text.splitlines()[0] == "MIT License"
    assert re.search(r"^Copyright \(c\) \d{4} the esprune authors$", text, re.M)
    flat = " ".join(text.split())                                          # line breaks are not part of it
    positions = [flat.find(clause) for clause in MIT_CLAUSES]
    assert -1 not in positions and positions == sorted(positions)
