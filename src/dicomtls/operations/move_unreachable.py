"""C-MOVE to a destination the server knows but cannot reach (its port has no listener): the cell that shows what
a broken return path looks like, diagnosed from the server's own log line."""

from dicomtls.operations import Operation, register
from dicomtls.operations.move import SERVER_WORDS


@register
class MoveUnreachable(Operation):
    name = "move-unreachable"
    summary = ("as move, but the destination the server is told of points at a port where nothing listens: the "
               "server cannot open the return association")
    dimse = "C-MOVE"
    sends = "store-ct"
    own_study = True
    destination = "closed"
    server_words = SERVER_WORDS
    listing_order = 70
