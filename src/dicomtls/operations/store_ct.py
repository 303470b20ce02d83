"""C-STORE of a small CT object, verified in the server's REST API."""

from dicomtls.operations import Operation, register


@register
class StoreCt(Operation):
    name = "store-ct"
    summary = "C-STORE of a CT object, verified in Orthanc's REST API"
    dimse = "C-STORE"
    sends = "store-ct"
    listing_order = 20
