"""Fuzzing every input format dicomtls reads: structure-aware mutations of the repository's real files (mutate),
the readers they go through (targets), a small fixed budget in the suite (test_fuzz) and `invoke fuzz`'s long
campaign (campaign)."""
