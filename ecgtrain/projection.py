"""A full default training's time and disk, projected from rates measured on a smaller data set.

``benchmarks/bench_scale.py`` measures, per lead-set size, the preparation rate per worker, the cache
bytes per record and each network's training and validation rates; :func:`projection` turns them
into hours and GB for the Challenge's 88,253 records with the default's folds, epochs and networks.
"""

from __future__ import annotations

from ecgio.leads import LEAD_SETS

#: Records in the Challenge 2021 training data.
CHALLENGE_RECORDS = 88253


def default_networks() -> list[tuple[str, ...]]:
    """The input branches of each network the default settings train per fold (the stacked fusion's
    groups, or the one joint network)."""
    from ecgtrain.settings import Settings

    settings = Settings()
    if settings.fusion == "stacked":
        return [tuple(group) for group in settings.stack_groups]
    return [tuple(settings.branches)]


def projection(rows: list[dict], jobs: int, epochs: int, folds: int) -> dict[str, float]:
    """Projected hours and cache GB of a full default training (five lead sets, 88,253 records).

    Per lead set: preparation, then for each fold and each network the default trains per fold (the
    stacked fusion's two), ``epochs`` epochs, each over the network's training records
    (``(folds - 1) / folds`` of all; 80 % for one split) and a validation pass over the rest. The
    trees of the features member (seconds per lead set on 378 records) are left out.
    """
    largest = max(r["records"] for r in rows)
    at_largest = [r for r in rows if r["records"] == largest]
    train_share = 0.8 if folds == 1 else (folds - 1) / folds
    hours, cache_gb = 0.0, 0.0
    for leads in LEAD_SETS:
        nearest = min(at_largest, key=lambda r: abs(r["leads"] - len(leads)))
        prepare = CHALLENGE_RECORDS / (nearest["prepare_rate_per_worker"] * jobs)
        per_epoch = 0.0
        for network in nearest.get("networks", [nearest]):
            per_epoch += train_share * CHALLENGE_RECORDS / network["train_records_per_s"]
            per_epoch += (1 - train_share) * CHALLENGE_RECORDS / network["val_records_per_s"]
        hours += (prepare + folds * epochs * per_epoch) / 3600
        cache_gb += nearest["cache_bytes_per_record"] * len(leads) / nearest["leads"] * CHALLENGE_RECORDS / 1e9
    return {"hours": hours, "cache_gb": cache_gb, "from_records": largest, "folds": folds, "epochs": epochs}


__all__ = ["CHALLENGE_RECORDS", "default_networks", "projection"]
