"""Per-customer cluster assignments, the table every method publishes beside its model bundle."""

import numpy as np
import pandas as pd


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
