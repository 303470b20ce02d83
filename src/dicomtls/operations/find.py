"""C-FIND, study root, at the STUDY level: the cell stores a CT object in a study of its own, then asks for that
study; it passes when the answer names it (and the object is verified in the server's REST API, as a store's is)."""

from dicomtls.operations import Operation, register


@register
class Find(Operation):
    name = "find"
    summary = ("C-STORE of a CT object in a study of its own, then a study-root C-FIND for that study: the answer "
               "must name it")
    dimse = "C-FIND"
    sends = "store-ct"
    own_study = True
    listing_order = 50
