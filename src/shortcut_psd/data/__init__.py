"""Data sets: the on-disk format every stage shares, built-in embedded sets and users' own formats."""

from shortcut_psd.data.builtin import (
    BUILTINS,
    build_brain_tissue,
    build_builtin,
    build_clinical,
    build_photos,
    builtin_defaults,
)
from shortcut_psd.data.card import contact_sheet, write_card
from shortcut_psd.data.store import ImageSet, load_imageset, save_imageset
from shortcut_psd.data.user import load_user_dataset

__all__ = [
    "BUILTINS",
    "ImageSet",
    "build_brain_tissue",
    "build_builtin",
    "build_clinical",
    "build_photos",
    "builtin_defaults",
    "contact_sheet",
    "load_imageset",
    "load_user_dataset",
    "save_imageset",
    "write_card",
]
