"""Per-customer cluster assignments, the table every method publishes beside its model bundle."""

import numpy as np
import pandas as pd

from segmentation_pipeline.errors import InputDataError


def assignments_table(result) -> pd.DataFrame:
    """customer_id, cluster, for density methods `noise` (True: in no dense region, assigned to the
    nearest cluster) and, for soft methods, the membership in its own cluster and in each cluster."""
    table = pd.DataFrame({"customer_id": result.customer_ids, "cluster": result.labels.astype("int64")})
    if getattr(result, "noise", None) is not None:
        table["noise"] = np.asarray(result.noise, dtype=bool)
    if result.memberships is not None:
        own = result.memberships[np.arange(len(result.labels)), result.labels]
        table["membership"] = own
        for cluster in range(result.n_clusters):
            table[f"membership_{cluster}"] = result.memberships[:, cluster]
    return table


def table_positions(customer_ids, table_ids: pd.Series, table: str) -> np.ndarray | None:
    """Row positions, in a customer table whose `customer_id` column is `table_ids`, of a clustering's
    customers (`customer_ids`, in its order), ids compared as text; None when the table lists exactly
    those customers in that order, the usual case (every customer table is written in id order), so
    callers take no copy and no index of millions of ids is built. InputDataError naming `table` when
    its ids repeat or it lacks clustered customers."""
    ids = np.asarray(customer_ids).astype(str)
    known = table_ids.to_numpy(dtype=object, na_value="").astype(str)
    if np.array_equal(known, ids) and bool((ids[1:] > ids[:-1]).all()):  # same ids, increasing: unique
        return None
    index = pd.Index(known)
    if not index.is_unique:
        repeated = index[index.duplicated()].unique()[:3].tolist()
        raise InputDataError(f"{table}: column 'customer_id' has duplicate values, e.g. {repeated}")
    positions = index.get_indexer(ids)
    if (positions < 0).any():
        unknown = ids[positions < 0]
        raise InputDataError(
            f"{table}: column 'customer_id' lacks {len(unknown)} clustered customer(s), e.g. {unknown[:3].tolist()}"
        )
    return positions
