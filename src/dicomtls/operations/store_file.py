"""C-STORE of the user's own file (`probe --store FILE`): not a scenario's, since only that command has the file."""

from dicomtls.operations import Operation, register


@register
class StoreFile(Operation):
    name = "store-file"
    summary = "C-STORE of the file given to `probe --store`"
    dimse = "C-STORE"
    sends = "store-file"
    in_scenarios = False
    listing_order = 40
