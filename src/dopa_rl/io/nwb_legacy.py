"""Files written with an older ndx-fiber-photometry (0.1, as DANDI 001038 stores them).

Version 0.1 and the installed 0.2 share a package and a namespace name, so pynwb reads a 0.1 file's groups
with the 0.2 classes and fails (``FiberPhotometryTable`` lacks the wavelength columns 0.2 requires; 0.1
keeps its devices in its own namespace).  pynwb 4 cannot load the 0.1 schema either: it makes
``OpticalFiber.model`` a text attribute where NWB 2.9 has a link.  :func:`legacy_manager` gives a
BuildManager (on a copy of pynwb's type map, so nothing global changes) that reads the 0.1 types as
their generic bases: devices as core ``Device``, the table as a ``DynamicTable``, the lab metadata as a
container holding that table.  What 0.1 stores on the devices (excitation and detected wavelengths, the
indicator's label) is not in 0.2's spec, so :func:`raw_attributes` reads it from the file's builder.
"""
from __future__ import annotations

from typing import Any

FIBER_PHOTOMETRY = "ndx-fiber-photometry"
_DEVICES_01 = ("Indicator", "OpticalFiber", "ExcitationSource", "Photodetector", "DichroicMirror",
               "BandOpticalFilter", "EdgeOpticalFilter")

__all__ = ["cached_version", "needs_legacy", "legacy_manager", "raw_attributes"]


def cached_version(h5file: Any, namespace: str = FIBER_PHOTOMETRY) -> str | None:
    """The version of ``namespace`` cached in an open h5py file (``/specifications``), or None."""
    group = h5file.get(f"specifications/{namespace}")
    if group is None or not len(group):
        return None
    return sorted(group.keys())[-1]


def needs_legacy(h5file: Any) -> bool:
    """True when the file caches ndx-fiber-photometry 0.1 (the installed package is 0.2)."""
    version = cached_version(h5file)
    return version is not None and version.split(".")[:2] == ["0", "1"]


def _legacy_metadata_class():
    from hdmf.common import DynamicTable
    from hdmf.utils import docval, getargs
    from pynwb.file import LabMetaData

    class LegacyFiberPhotometry(LabMetaData):
        """An ndx-fiber-photometry 0.1 ``FiberPhotometry``: lab metadata holding the photometry table."""

        __nwbfields__ = ({"name": "fiber_photometry_table", "child": True},)

        @docval({"name": "name", "type": str, "doc": "name of the metadata group"},
                {"name": "fiber_photometry_table", "type": DynamicTable, "doc": "the 0.1 FiberPhotometryTable",
                 "default": None})
        def __init__(self, **kwargs):
            name, table = getargs("name", "fiber_photometry_table", kwargs)
            super().__init__(name=name)
            self.fiber_photometry_table = table

    return LegacyFiberPhotometry


def legacy_manager() -> Any:
    """A BuildManager reading ndx-fiber-photometry 0.1 types as generic ones (on a copied type map)."""
    import ndx_fiber_photometry  # noqa: F401  (the 0.2 namespace the file's types are looked up in)
    from hdmf.build import BuildManager
    from hdmf.common import DynamicTable
    from pynwb import get_type_map
    from pynwb.device import Device

    type_map = get_type_map()  # a deep copy: the global map keeps the 0.2 classes
    for name in _DEVICES_01:
        type_map.register_container_type(FIBER_PHOTOMETRY, name, Device)
    type_map.register_container_type(FIBER_PHOTOMETRY, "FiberPhotometryTable", DynamicTable)
    type_map.register_container_type(FIBER_PHOTOMETRY, "FiberPhotometry", _legacy_metadata_class())
    return BuildManager(type_map)


def raw_attributes(container: Any) -> dict[str, Any]:
    """Every attribute the file stores on ``container``'s group, mapped by the spec or not ({} when the
    container was not read from a file)."""
    try:
        io = container.get_read_io()
    except Exception:  # noqa: BLE001 - not read from a file (hdmf raises its own error types)
        return {}
    if io is None:
        return {}
    try:
        builder = io.manager.get_builder(container)
    except Exception:  # noqa: BLE001
        return {}
    return dict(builder.attributes) if builder is not None else {}
