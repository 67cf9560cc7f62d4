"""Built-in encoders, registered through the same hook as any third-party plugin."""

from toksuite.encoders.base import Decoded, Encoder
from toksuite.hookspecs import hookimpl

__all__ = ["Decoded", "Encoder"]


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
