"""Labels as the Challenge defines them: which classes each source's annotators looked for.

The Challenge's sources were labelled by different hospitals with different vocabularies: PTB-XL
never codes bundle branch block (BBB) or PVC, CPSC only nine rhythm and conduction classes, and so
on (the per-source counts of the Challenge training data; a class with no record in a source is
taken as never annotated there). A 0 for such a class says "not looked for", not "absent", so with
the ``mask_unannotated`` setting those (record, class) pairs leave the loss instead of teaching the
network that, say, every PTB-XL record is free of PVCs. Sources not listed (unknown, synthetic)
keep every class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecgscore.classes import scored_classes


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Source (as :func:`ecgdata.index.source_of` names it) -> SNOMED codes with at least one record there.
ANNOTATED: dict[str, frozenset[str]] = {
    "CPSC": _codes("164889003 270492004 164909002 426783006 284470004 59118001"),
    "CPSC-Extra": _codes("""164889003 164890007 426627000 713427006 270492004 713426002 164909002 698252002 426783006
        284470004 10370003 427172004 111975006 164917005 47665007 59118001 427393009 426177001
        427084000 63593006 164934002 59931005 17338001"""),
    "StPetersburg": _codes("""164889003 6374002 426627000 698252002 284470004 59118001 427393009 427084000 63593006
        59931005"""),
    "PTB": _codes("164889003 164890007 6374002 426783006 427084000"),
    "PTB-XL": _codes("""164889003 164890007 713427006 270492004 713426002 39732003 445118002 164909002 251146004
        698252002 426783006 284470004 10370003 164947007 111975006 164917005 47665007 427393009
        426177001 427084000 63593006 164934002 59931005"""),
    "Georgia": _codes("""164889003 164890007 6374002 426627000 713427006 270492004 713426002 39732003 445118002
        164909002 251146004 698252002 426783006 284470004 111975006 164917005 47665007 59118001
        427393009 426177001 427084000 63593006 164934002 59931005 17338001"""),
    "Chapman-Shaoxing": _codes("""164889003 164890007 270492004 39732003 164909002 251146004 698252002 426783006 284470004
        164947007 111975006 164917005 47665007 59118001 426177001 427084000 164934002 59931005
        17338001"""),
    "Ningbo": _codes("""164890007 6374002 426627000 733534002 713427006 270492004 713426002 39732003 445118002
        164909002 251146004 698252002 426783006 284470004 10370003 365413008 427172004 164947007
        111975006 164917005 47665007 59118001 427393009 426177001 427084000 63593006 164934002
        59931005"""),
    # Not a Challenge source: the scored classes ecgdata/ludb_to_snomed.csv maps LUDB's statements to (each has
    # records in LUDB). Its cardiologists wrote no T-wave, Q-wave, QT, PR or voltage statements.
    "LUDB": _codes("""164889003 164890007 713427006 270492004 713426002 39732003 445118002 164909002 698252002
        426783006 284470004 10370003 427172004 47665007 427393009 426177001 427084000"""),
}


def annotated_classes(source: str) -> np.ndarray:
    """(26,) bool: the scored classes (equivalent codes merged) that ``source`` annotates; all for an
    unlisted source. A merged class counts as annotated when any of its codes is."""
    codes = ANNOTATED.get(source)
    if codes is None:
        return np.ones(len(scored_classes()), bool)
    return np.array([bool(group & codes) for group in scored_classes()])


def annotation_mask(sources: Sequence[str], targets: np.ndarray | None = None) -> np.ndarray:
    """(N, 26) bool: True where record i's loss counts class j. A positive label always counts (a source
    that labelled it evidently annotates it)."""
    mask = np.stack([annotated_classes(source) for source in sources]) if len(sources) else np.ones((0, 26), bool)
    if targets is not None:
        mask |= np.asarray(targets, bool)
    return mask
