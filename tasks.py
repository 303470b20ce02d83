"""The clone's `invoke` tasks: the collection the installed `dicomtls` command runs (src/dicomtls/tasks.py).

When Invoke's own program loads this file, the command line is handed over to the `dicomtls` program, so that
`invoke` in a clone takes the same options and exits with the same statuses (2 on a usage error) as `dicomtls`.
"""

from dicomtls.cli import hand_over_from_invoke
from dicomtls.tasks import ns

hand_over_from_invoke()

__all__ = ["ns"]
