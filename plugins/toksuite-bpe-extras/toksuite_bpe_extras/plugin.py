"""The module named in this package's entry point: toksuite calls its hook at start-up."""

import toksuite


@toksuite.hookimpl
def toksuite_register_encoders(register):
    # Imported here, not at module level, so that `toksuite --help` stays fast.
    from toksuite_bpe_extras.scan_bpe import HilbertBPEEncoder, SnakeBPEEncoder

    for cls in (SnakeBPEEncoder, HilbertBPEEncoder):
        register(cls)
