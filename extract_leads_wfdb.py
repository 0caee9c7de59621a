#!/usr/bin/env python
"""Make reduced-lead copies of Challenge records (``.hea`` + ``.mat``), as the Challenge's 6/4/3/2-lead data.

Usage: python extract_leads_wfdb.py -i IN -o OUT -l I II V2 [-k KEY]

Every record under IN (subfolders included, layout kept under OUT) is written with only the
requested leads, in the order given: a MATLAB v4 ``.mat`` with the variable ``val`` in the
input's dtype, and a header whose line 0 carries the new lead count, whose lead lines keep all
their fields (gain, baseline, checksum, ...; each checksum covers one lead's samples, so it stays
valid) with the byte offset fixed for the new file, and whose comment lines are kept. The
result reads with the official helper, with ``ecgio`` and with ``wfdb.rdrecord``.

A record that lacks a requested lead, or cannot be read (the signal file is read only when it is
a regular file inside the record's folder, of the size its header declares), is logged as an
error naming it and skipped; the others go on. Files are written atomically. The last line printed
is a summary; the exit status is 1 when any record failed, 2 when a lead name is not one of the
twelve standard leads, or when IN is not a folder or holds no record.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from pathlib import Path

import numpy as np

from ecgio.errors import RecordError
from ecgio.files import atomic_write, atomic_write_with
from ecgio.header import parse_header
from ecgio.leads import TWELVE_LEADS, canonical_lead, lead_indices
from ecgio.record import find_records, load_raw
from ecglog.progress import progress as progress_bar

LOG = logging.getLogger("extract_leads")
OUTPUT_KEY = "val"
_FORMAT_RE = re.compile(r"^(?P<format>\d+)(?P<spf>x\d+)?(?P<skew>:\d+)?(?:\+\d+)?$")


def mat_v4_data_offset(key: str = OUTPUT_KEY) -> int:
    """Byte offset of the data in a MATLAB v4 file: 20-byte header, then the name and its NUL."""
    return 20 + len(key) + 1


def _signal_line_positions(lines: list[str]) -> tuple[int, list[int]]:
    """Index of the record line and of the signal lines (non-comment, non-empty lines after it)."""
    content = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not content:
        raise ValueError("header has no record line")
    return content[0], content[1:]


def _with_offset(format_field: str, offset: int) -> str:
    """``16x1+24`` with its byte offset set to ``offset`` (other parts unchanged)."""
    match = _FORMAT_RE.match(format_field)
    if match is None:
        return format_field
    return f"{match['format']}{match['spf'] or ''}{match['skew'] or ''}+{offset}"


def reduced_header(text: str, chosen: list[int], mat_name: str, dtype: np.dtype) -> str:
    """Header text keeping only the signal lines ``chosen`` (header-order indices), in that order."""
    lines = text.splitlines()
    record_index, signal_indices = _signal_line_positions(lines)
    if not signal_indices:
        raise ValueError("header lists no leads")
    record_tokens = lines[record_index].split()
    record_tokens[1] = str(len(chosen))
    new_signal_lines = []
    for index in chosen:
        tokens = lines[signal_indices[index]].split()
        tokens[0] = mat_name
        if np.dtype(dtype) == np.int16 and len(tokens) > 1:
            tokens[1] = _with_offset(tokens[1], mat_v4_data_offset())
        new_signal_lines.append(" ".join(tokens))
    dropped = set(signal_indices)
    out = []
    for i, line in enumerate(lines):
        if i == record_index:
            out.append(" ".join(record_tokens))
            out.extend(new_signal_lines)
        elif i not in dropped:
            out.append(line)
    return "\n".join(out) + "\n"


def extract_record(header_file: Path, in_root: Path, out_root: Path, leads: list[str], key: str) -> Path:
    """Write the reduced copy of one record; returns the new header path. Raises RecordError."""
    text = header_file.read_text(encoding="utf-8", errors="replace")
    header = parse_header(text, source=str(header_file))
    indices = lead_indices(header.leads, leads)
    missing = [lead for lead, index in zip(leads, indices) if index is None]
    if missing:
        raise RecordError(header_file, f"lacks lead(s) {', '.join(missing)} (has {', '.join(header.leads)})")
    mat_file = header_file.with_suffix(".mat")
    if not mat_file.exists():
        raise RecordError(mat_file, "signal file is missing")
    raw, _ = load_raw(header_file, header, key=key, require_usable=False)  # contained, bounded, shape-checked
    chosen = [int(index) for index in indices if index is not None]
    out_header = out_root / header_file.relative_to(in_root)
    out_mat = out_header.with_suffix(".mat")
    from scipy.io import savemat

    selected = np.ascontiguousarray(raw[chosen])
    atomic_write_with(out_mat, lambda stream: savemat(stream, {OUTPUT_KEY: selected}, format="4"))
    if raw.dtype != np.int16:
        LOG.warning("%s: samples are %s, not int16; wfdb may not read the copy", mat_file, raw.dtype)
    atomic_write(out_header, reduced_header(text, chosen, out_mat.name, raw.dtype))
    return out_header


def extract_folder(
    in_root: Path, out_root: Path, leads: list[str], key: str = "val", show_progress: bool = True
) -> tuple[int, list[tuple[Path, str]]]:
    """Extract every record under ``in_root``; returns (number written, [(header, problem), ...]). An output
    folder overlapping the input raises ValueError (:func:`overlap_error`)."""
    overlap = overlap_error(in_root, out_root)
    if overlap:
        raise ValueError(overlap)
    leads = [canonical_lead(lead) for lead in leads]
    headers = [path for path in find_records(in_root) if path.with_suffix(".mat").exists()]
    written = 0
    failures: list[tuple[Path, str]] = []
    for header_file in progress_bar(headers, desc="extract", unit="rec", enabled=show_progress):
        try:
            extract_record(header_file, in_root, out_root, leads, key)
            written += 1
        except (RecordError, OSError, ValueError) as error:
            LOG.error("skipped %s", error)
            failures.append((header_file, str(error)))
    return written, failures


def overlap_error(in_root: Path, out_root: Path) -> str | None:
    """Why the output folder may not be used with this input, or None: an output equal to the input or inside
    it would overwrite the originals with their reduced copies (or read the copies back as input), and an
    input inside the output would mix copies among the records being read."""
    source, target = in_root.resolve(), out_root.resolve()
    if target == source or target.is_relative_to(source):
        return (
            f"the output folder {out_root} is the input folder {in_root} or inside it;"
            " choose a folder outside it (the originals would be overwritten or read back)"
        )
    if source.is_relative_to(target):
        return f"the input folder {in_root} is inside the output folder {out_root}; choose an output folder outside it"
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Reduced-lead copies of Challenge records (.hea + .mat).")
    parser.add_argument("-i", "--input_directory", required=True, type=Path, help="folder of records (recursed)")
    parser.add_argument("-o", "--output_directory", required=True, type=Path, help="where the copies go")
    parser.add_argument("-l", "--leads", required=True, nargs="+", help="leads to keep, e.g. I II V2")
    parser.add_argument("-k", "--key", default="val", help="variable name in the input .mat files (default val)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    unknown = [lead for lead in args.leads if canonical_lead(lead) not in TWELVE_LEADS]
    if unknown:
        print(f"error: unknown lead name(s) {' '.join(unknown)} (known: {' '.join(TWELVE_LEADS)})", file=sys.stderr)
        return 2
    if not args.input_directory.is_dir():
        print(f"error: {args.input_directory}: not a folder", file=sys.stderr)
        return 2
    overlap = overlap_error(args.input_directory, args.output_directory)
    if overlap:
        print(f"error: {overlap}", file=sys.stderr)
        return 2
    if not any(path.with_suffix(".mat").exists() for path in find_records(args.input_directory)):
        print(f"error: {args.input_directory}: no records (.hea with a .mat beside it) found", file=sys.stderr)
        return 2
    start = time.perf_counter()
    written, failures = extract_folder(
        args.input_directory, args.output_directory, args.leads, args.key, show_progress=not args.quiet
    )
    seconds = time.perf_counter() - start
    total = written + len(failures)
    print(
        f"Extracted leads {','.join(canonical_lead(lead) for lead in args.leads)} from {written} of {total} "
        f"records into {args.output_directory}; {len(failures)} failed; {seconds:.1f} s."
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
