"""The judge: the fixed rules that decide keep/discard and /done (agents propose; the judge decides).

pools (candidate pooling, NO_EVIDENCE, the /done window), decision (keep, discard, crash, unsafe,
cancelled against the reference candidate), keep (the posterior keep test), integrity (the frozen
fingerprints re-checked during a session). Every file here is part of done_sha256.
"""
