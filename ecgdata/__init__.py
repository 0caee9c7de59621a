"""Datasets: the PTB-XL importer and benchmark tasks, the synthetic demo set, the dataset index and splits.

Submodules are imported on use (``ecgdata.ptbxl``, ``ecgdata.ludb_challenge``, ``ecgdata.ptbxl_tasks``, ``ecgdata.synthetic``,
``ecgdata.index``, ``ecgdata.splits``, ``ecgdata.challenge_format``) so that reading an index does not
pay for importing neurokit2.
"""

from ecgdata.challenge_format import write_challenge_record
from ecgdata.splits import stratified_kfold, train_val_split

__all__ = ["stratified_kfold", "train_val_split", "write_challenge_record"]
