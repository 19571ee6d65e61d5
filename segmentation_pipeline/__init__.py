"""Customer segmentation pipeline: transactions -> RFM features -> clusters -> profiles."""
