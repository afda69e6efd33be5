"""Spike trains from sorter folders (phy) and the SpikeTrains interface."""
from __future__ import annotations

import numpy as np
import pytest

from dopa_rl.errors import InputError
from dopa_rl.io.spikes import SpikeTrains, read_spike_trains


def _phy_folder(d, rate=20000.0):
    (d / "params.py").write_text("dat_path = 'raw.bin'\nn_channels_dat = 4\ndtype = 'int16'\noffset = 0\n"
                                 f"sample_rate = {rate}\nhp_filtered = True\n")
    rng = np.random.default_rng(0)
    samples = np.sort(rng.integers(0, int(rate * 100), 500)).astype(np.uint64)
    clusters = rng.choice([0, 3, 7], 500).astype(np.int32)
    np.save(d / "spike_times.npy", samples)
    np.save(d / "spike_clusters.npy", clusters)
    (d / "cluster_group.tsv").write_text("cluster_id\tgroup\n0\tgood\n3\tmua\n7\tgood\n")
    return samples, clusters


def test_phy_folder_spike_times_in_seconds(tmp_path):
    samples, clusters = _phy_folder(tmp_path)
    trains = read_spike_trains(tmp_path)
    assert trains.unit_ids == [0, 3, 7] and trains.sampling_frequency == 20000.0
    for uid in (0, 3, 7):
        np.testing.assert_array_equal(trains[uid], samples[clusters == uid] / 20000.0)
    assert list(trains.properties["quality"]) == ["good", "mua", "good"]
    frame = trains.to_frame()
    assert len(frame) == 500 and set(frame["unit"]) == {0, 3, 7}


def test_not_a_sorting_folder(tmp_path):
    with pytest.raises(InputError, match="not a phy/Kilosort folder"):
        read_spike_trains(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_spike_trains(tmp_path / "missing.nwb")


def test_spike_trains_mapping():
    st = SpikeTrains({2: [0.3, 0.1], 9: []})
    assert st.unit_ids == [2, 9] and st.n_spikes == 2 and len(st) == 2
    np.testing.assert_array_equal(st[2], [0.1, 0.3])  # sorted on the way in
    assert dict(st.items()).keys() == {2, 9}


def test_units_table_at_another_path(tmp_path):
    """unit_table_path is honoured by the pre-check too (a units table in a processing module)."""
    import datetime as dt

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.misc import Units

    f = NWBFile(session_description="x", identifier="x", session_start_time=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    units = Units(name="sorted_units", description="sorted elsewhere", resolution=1 / 20000)
    units.add_unit(spike_times=[0.1, 0.25])
    units.add_unit(spike_times=[0.3])
    f.create_processing_module("ecephys", "sorting").add(units)
    with NWBHDF5IO(str(tmp_path / "u.nwb"), "w") as io:
        io.write(f)
    trains = read_spike_trains(tmp_path / "u.nwb", unit_table_path="processing/ecephys/sorted_units")
    assert trains.sampling_frequency == 20000.0  # from that table's resolution
    np.testing.assert_array_equal(trains[0], [0.1, 0.25])
    np.testing.assert_array_equal(trains[1], [0.3])
    with pytest.raises(InputError, match="no units table at 'units'"):
        read_spike_trains(tmp_path / "u.nwb")
