"""Reading ECG records: headers, signals in mV, lead names. See :mod:`ecgio.record`."""

from ecgio.errors import RecordError
from ecgio.header import Header, SignalSpec, parse_header
from ecgio.leads import LEAD_SETS, TWELVE_LEADS, canonical_lead, sort_leads
from ecgio.limits import check_size, check_usable, max_samples
from ecgio.record import Record, find_records, load_raw, read_header, read_record, signal_files, to_millivolts

__all__ = [
    "LEAD_SETS",
    "TWELVE_LEADS",
    "Header",
    "Record",
    "RecordError",
    "SignalSpec",
    "canonical_lead",
    "check_size",
    "check_usable",
    "find_records",
    "load_raw",
    "max_samples",
    "parse_header",
    "read_header",
    "read_record",
    "signal_files",
    "sort_leads",
    "to_millivolts",
]
