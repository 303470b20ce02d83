"""The clone's `invoke` tasks: the collection the installed `dicomtls` command runs (src/dicomtls/tasks.py)."""

from dicomtls.tasks import ns

__all__ = ["ns"]
