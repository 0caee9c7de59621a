"""Reading ECG records: headers, signals in mV, lead names. See :mod:`ecgio.record`."""

from ecgio.errors import RecordError
from ecgio.header import Header, parse_header
from ecgio.leads import LEAD_SETS, TWELVE_LEADS, canonical_lead, sort_leads
from ecgio.record import Record, find_records, load_raw, read_header, read_record, to_millivolts

__all__ = [
    "LEAD_SETS",
    "TWELVE_LEADS",
    "Header",
    "Record",
    "RecordError",
    "canonical_lead",
    "find_records",
    "load_raw",
    "parse_header",
    "read_header",
    "read_record",
    "sort_leads",
    "to_millivolts",
]
