"""Data sets: the on-disk format every stage shares, built-in embedded sets and users' own formats.

Modules: :mod:`~shortcut_psd.data.store` (ImageSet, ``data.npz``), :mod:`~shortcut_psd.data.image_io`
(reading images, DICOM, windowing, grey/RGB, resizing: shared by everything below and the CLI),
:mod:`~shortcut_psd.data.builtin` (registry of the built-in sets, one module each: ``photos``,
``clinical``, ``brain_tissue``, from the pieces in ``crops``), :mod:`~shortcut_psd.data.formats`
(registry of users' formats, on :mod:`~shortcut_psd.data.format_base`), :mod:`~shortcut_psd.data.user`
(loading a user's data set through that registry) and :mod:`~shortcut_psd.data.card` (data cards).
"""

from shortcut_psd.data.builtin import (
    BUILTINS,
    build_brain_tissue,
    build_builtin,
    build_clinical,
    build_photos,
    builtin_defaults,
)
from shortcut_psd.data.card import contact_sheet, write_card
from shortcut_psd.data.formats import FORMATS, check_format_config, check_format_options, user_spec
from shortcut_psd.data.image_io import dicom_frames, read_image, robust_window
from shortcut_psd.data.store import ImageSet, load_imageset, save_imageset
from shortcut_psd.data.user import load_user_dataset

__all__ = [
    "BUILTINS",
    "FORMATS",
    "ImageSet",
    "build_brain_tissue",
    "build_builtin",
    "build_clinical",
    "build_photos",
    "builtin_defaults",
    "check_format_config",
    "check_format_options",
    "contact_sheet",
    "dicom_frames",
    "load_imageset",
    "load_user_dataset",
    "read_image",
    "robust_window",
    "save_imageset",
    "user_spec",
    "write_card",
]
