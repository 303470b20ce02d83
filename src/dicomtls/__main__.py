"""``python -m dicomtls``: the ``dicomtls`` command, for a Python whose scripts are not on PATH."""

from dicomtls.cli import main

main()
