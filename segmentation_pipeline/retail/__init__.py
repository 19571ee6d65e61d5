"""The retail domain: transaction logs -> cleaned rows -> RFM and customer features -> personas."""
