"""The encoder interface, the pieces an encoder is built from, and the built-in encoders.

This package is the public surface for encoder authors: a plugin imports what it needs from
``toksuite.encoders`` (the names in ``__all__``), never from the modules behind it, which may move.
The built-in encoders are registered through the same hook as any third-party plugin.
"""

from toksuite.encoders.base import Decoded, Encoder, ParamSpec
from toksuite.encoders.grammar import State, TokenGrammar, Walk
from toksuite.encoders.hf_base import HFTokenizerEncoder, fit_sample
from toksuite.encoders.scan import SCAN_ORDERS, ScanOrder, from_scan, scan_order
from toksuite.encoders.symbols import (
    Quantizer,
    codepoints_to_text,
    fit_length,
    symbol_codepoints,
    symbols_to_text,
    text_to_symbols,
)
from toksuite.hookspecs import hookimpl

__all__ = [
    "SCAN_ORDERS",
    "Decoded",
    "Encoder",
    "HFTokenizerEncoder",
    "ParamSpec",
    "Quantizer",
    "ScanOrder",
    "State",
    "TokenGrammar",
    "Walk",
    "codepoints_to_text",
    "fit_length",
    "fit_sample",
    "from_scan",
    "scan_order",
    "symbol_codepoints",
    "symbols_to_text",
    "text_to_symbols",
]


@hookimpl
def toksuite_register_encoders(register):
    from toksuite.encoders.bpe import BPEGreyEncoder, BPERGBEncoder
    from toksuite.encoders.bpe_palette import BPEPaletteEncoder
    from toksuite.encoders.bytelevel import ByteLevelBPEEncoder, ByteLevelGreyBPEEncoder
    from toksuite.encoders.kmeans import KMeansEncoder
    from toksuite.encoders.pixels import GreyPixelEncoder, RGBPixelEncoder

    for cls in (
        GreyPixelEncoder,
        RGBPixelEncoder,
        KMeansEncoder,
        BPEGreyEncoder,
        BPERGBEncoder,
        BPEPaletteEncoder,
        ByteLevelBPEEncoder,
        ByteLevelGreyBPEEncoder,
    ):
        register(cls)
