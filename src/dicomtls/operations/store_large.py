"""C-STORE of a CT slice of at least 10 MiB: a real stream of PDUs through the proxy, long enough for a fault to
land mid-transfer."""

from dicomtls.operations import Operation, register


@register
class StoreLarge(Operation):
    name = "store-large"
    summary = "C-STORE of a CT object of at least 10 MiB, verified in Orthanc's REST API"
    dimse = "C-STORE"
    sends = "store-large"
    mid_transfer = True
    listing_order = 30
