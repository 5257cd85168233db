"""Data sets: the on-disk format every stage shares, built-in embedded sets and users' own formats."""

from shortcut_psd.data.store import ImageSet, load_imageset, save_imageset

__all__ = ["ImageSet", "load_imageset", "save_imageset"]
