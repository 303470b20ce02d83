"""``python -m dicomtls``: the ``dicomtls`` command, for a Python whose scripts are not on PATH."""

from dicomtls.cli import main

if __name__ == "__main__":  # a spawned worker process imports this module again under another name
    main()
