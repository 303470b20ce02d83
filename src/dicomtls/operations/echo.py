"""C-ECHO: the association and one verification round trip; nothing is stored."""

from dicomtls.operations import Operation, register


@register
class Echo(Operation):
    name = "echo"
    summary = "C-ECHO"
    dimse = "C-ECHO"
    listing_order = 10
