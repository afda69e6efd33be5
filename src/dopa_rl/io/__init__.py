"""Input and output: behavior tables, NWB (the only pynwb importer), spikes (the only spikeinterface
importer), synthetic sessions, atomic file writes."""
